import { guardRedis, subscriberFor, type RedisClient } from './redis-client.js';

/**
 * The listeners of one Redis channel, over one subscriber connection opened when the first listener comes (a
 * subscribed connection can run no other command). A message that does not parse is dropped; a listener that
 * throws does not keep the others from hearing.
 */
export class ChannelListeners<Message> {
  private readonly listeners = new Set<(message: Message) => void>();
  private subscriber: RedisClient | undefined;
  private subscribed: Promise<void> | undefined;

  constructor(
    private readonly redis: RedisClient,
    private readonly channel: string,
    /** The message, or undefined for one to drop. */
    private readonly parse: (raw: string) => Message | undefined,
    private readonly commandTimeoutMs: number,
  ) {}

  /** Resolves once subscribed (messages published after that reach `listener`), to a function that removes it. */
  async add(listener: (message: Message) => void): Promise<() => void> {
    this.listeners.add(listener);
    try {
      this.subscribed ??= this.open();
      await this.subscribed;
    } catch (error) {
      this.listeners.delete(listener);
      this.close();
      throw error;
    }
    return () => {
      this.listeners.delete(listener);
    };
  }

  close(): void {
    this.subscribed = undefined;
    this.subscriber?.disconnect();
    this.subscriber = undefined;
  }

  /** Drops every listener and the connection. */
  clear(): void {
    this.listeners.clear();
    this.close();
  }

  private async open(): Promise<void> {
    const subscriber = subscriberFor(this.redis);
    subscriber.on('message', (_channel: string, raw: string) => {
      const message = this.parse(raw);
      if (message === undefined) return;
      for (const listener of [...this.listeners]) {
        try {
          listener(message);
        } catch {
          // a listener's fault is its own; the others still hear
        }
      }
    });
    this.subscriber = subscriber;
    await guardRedis(() => subscriber.subscribe(this.channel), this.commandTimeoutMs);
  }
}
