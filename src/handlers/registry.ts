import type { Handler } from './handler.js';
import echo from './echo.js';
import sleep from './sleep.js';

/** Every built-in job type. To add one: write src/handlers/<type>.ts and list it here. */
export const builtInHandlers: Handler[] = [echo, sleep];

export class HandlerRegistry {
  private readonly byType = new Map<string, Handler>();

  constructor(handlers: Handler[]) {
    for (const handler of handlers) {
      if (this.byType.has(handler.type)) throw new Error(`two handlers define the job type "${handler.type}"`);
      this.byType.set(handler.type, handler);
    }
  }

  /** The handlers named in JOB_TYPES; an unknown name stops the start-up. */
  static enabled(names: string[], available: Handler[] = builtInHandlers): HandlerRegistry {
    const known = new Map(available.map((handler) => [handler.type, handler]));
    const unknown = names.filter((name) => !known.has(name));
    if (unknown.length > 0) {
      throw new Error(`JOB_TYPES names unknown job types: ${unknown.join(', ')} (known: ${[...known.keys()].join(', ')})`);
    }
    return new HandlerRegistry(names.map((name) => known.get(name)!));
  }

  get(type: string): Handler | undefined {
    return this.byType.get(type);
  }

  get types(): string[] {
    return [...this.byType.keys()];
  }

  get all(): Handler[] {
    return [...this.byType.values()];
  }
}
