/** A typed key for a service; the type parameter is the service's type. */
export class Token<T> {
  declare readonly type: T;
  constructor(readonly name: string) {}
}
