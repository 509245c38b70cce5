// Type-aware lint: the rules that matter most here catch floating promises and
// misused promises (an un-awaited store write is a lost edit).
import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  {
    ignores: [
      "dist/",
      "node_modules/",
      "samples/editor/public/",
      "**/*.js",
      "**/*.mjs",
      "**/*.cjs",
      "!eslint.config.js",
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      "@typescript-eslint/no-floating-promises": "error",
      "@typescript-eslint/no-misused-promises": "error",
      "@typescript-eslint/no-explicit-any": "error",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_" }],
      "no-empty": ["error", { allowEmptyCatch: false }],
      // Yjs's type declarations omit Y.Text#toString, which exists at run time.
      "@typescript-eslint/no-base-to-string": ["error", { ignoredTypeNames: ["YText", "Text", "Error"] }],
    },
  },
  { files: ["eslint.config.js"], ...tseslint.configs.disableTypeChecked },
);
