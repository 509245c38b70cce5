/**
 * Reads a V8 heap snapshot (`.heapsnapshot`, as HeapProbe.snapshot writes it) and
 * sums it by what the soak's heap verdict is about: the program's data, apart from
 * what the JIT produces.
 */
import { readFileSync } from "node:fs";

/** Sizes in bytes (self sizes, summed over the snapshot's nodes). */
export interface HeapSummary {
  total: number;
  /**
   * V8's node type "code": compiled code, bytecode, their metadata, feedback
   * vectors, shared function infos, scope infos.
   */
  code: number;
  /**
   * The weak lists of optimized code that depends on a hidden class or property
   * cell (`dependent_code`): they grow and shrink with the JIT too.
   */
  dependentCode: number;
  /** `total - code - dependentCode`: what the program's objects hold. */
  data: number;
  /** Instances per constructor name, for the constructors in `count`. */
  instances: Record<string, number>;
}

interface RawSnapshot {
  snapshot: {
    meta: {
      node_fields: string[];
      node_types: [string[], ...unknown[]];
      edge_fields: string[];
      edge_types: [string[], ...unknown[]];
    };
  };
  nodes: number[];
  edges: number[];
  strings: string[];
}

/** Sums the snapshot at `path`; counts the objects whose constructor is in `count`. */
export function summarizeHeapSnapshot(path: string, count: readonly string[] = []): HeapSummary {
  const raw = JSON.parse(readFileSync(path, "utf8")) as RawSnapshot;
  const { meta } = raw.snapshot;
  const nodeFields = meta.node_fields.length;
  const edgeFields = meta.edge_fields.length;
  const nodeTypes = meta.node_types[0];
  const edgeTypes = meta.edge_types[0];
  const typeAt = meta.node_fields.indexOf("type");
  const nameAt = meta.node_fields.indexOf("name");
  const sizeAt = meta.node_fields.indexOf("self_size");
  const edgeCountAt = meta.node_fields.indexOf("edge_count");
  const edgeTypeAt = meta.edge_fields.indexOf("type");
  const edgeNameAt = meta.edge_fields.indexOf("name_or_index");
  const edgeToAt = meta.edge_fields.indexOf("to_node");
  const named = new Set(count);

  // Edges are stored node after node, each node's `edge_count` of them.
  const dependent = new Set<number>();
  let edge = 0;
  for (let node = 0; node < raw.nodes.length; node += nodeFields) {
    const edges = raw.nodes[node + edgeCountAt] ?? 0;
    for (let k = 0; k < edges; k++, edge += edgeFields) {
      const type = edgeTypes[raw.edges[edge + edgeTypeAt] ?? 0];
      // element and hidden edges carry an index, the others a string id.
      if (type === "element" || type === "hidden") continue;
      if (raw.strings[raw.edges[edge + edgeNameAt] ?? 0] === "dependent_code") {
        dependent.add(raw.edges[edge + edgeToAt] ?? 0);
      }
    }
  }

  const summary: HeapSummary = { total: 0, code: 0, dependentCode: 0, data: 0, instances: {} };
  for (const name of count) summary.instances[name] = 0;
  for (let node = 0; node < raw.nodes.length; node += nodeFields) {
    const size = raw.nodes[node + sizeAt] ?? 0;
    const type = nodeTypes[raw.nodes[node + typeAt] ?? 0];
    summary.total += size;
    if (type === "code") summary.code += size;
    else if (dependent.has(node)) summary.dependentCode += size;
    if (type === "object") {
      const name = raw.strings[raw.nodes[node + nameAt] ?? 0] ?? "";
      if (named.has(name)) summary.instances[name] = (summary.instances[name] ?? 0) + 1;
    }
  }
  summary.data = summary.total - summary.code - summary.dependentCode;
  return summary;
}
