/** Typings for cluster-key-slot 1.x (ioredis's own slot calculator; the package ships none). */
declare module "cluster-key-slot" {
  /** The Redis Cluster hash slot (0–16383) of a key or sharded channel, hash tags included. */
  function calculateSlot(key: string | Buffer): number;
  export default calculateSlot;
}
