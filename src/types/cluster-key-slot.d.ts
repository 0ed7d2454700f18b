/** cluster-key-slot ships no types: the Redis Cluster slot (0-16383) of a key, honouring its {hash tag}. */
declare module 'cluster-key-slot' {
  export default function calculateSlot(key: string): number;
}
