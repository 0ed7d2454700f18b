import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { z } from 'zod';
import { defineHandler, JobFailure, type Handler, type HandlerDefinition, type HandlerModuleApi } from './handler.js';

export type { HandlerModuleApi };

/**
 * Loads job types from compiled JS modules (HANDLER_MODULES). A module's default export (or its `handler`
 * export) is a handler made with defineHandler, or a function `({ defineHandler, JobFailure, z }) => handler`.
 * A module that fails to load throws, naming its path: a start-up with half its job types is worse than none.
 */
export async function loadHandlerModules(paths: string[]): Promise<Handler[]> {
  const api: HandlerModuleApi = { defineHandler, JobFailure, z };
  const handlers: Handler[] = [];
  for (const path of paths) {
    const absolute = isAbsolute(path) ? path : resolve(process.cwd(), path);
    try {
      const module = (await import(pathToFileURL(absolute).href)) as { default?: unknown; handler?: unknown };
      const exported = module.default ?? module.handler;
      const candidate =
        typeof exported === 'function' ? (exported as (api: HandlerModuleApi) => unknown)(api) : exported;
      handlers.push(checked(candidate));
    } catch (error) {
      throw new Error(`cannot load handler module ${absolute}: ${(error as Error).message}`, { cause: error });
    }
  }
  return handlers;
}

function checked(candidate: unknown): Handler {
  const handler = candidate as Partial<HandlerDefinition> | undefined;
  if (!handler || typeof handler !== 'object') throw new Error('it exports no handler (default export or `handler`)');
  if (typeof handler.run !== 'function') throw new Error('its handler has no run(input, ctx) function');
  if (!handler.input || typeof (handler.input as { safeParse?: unknown }).safeParse !== 'function') {
    throw new Error('its handler has no zod `input` schema');
  }
  return defineHandler(handler as HandlerDefinition);
}
