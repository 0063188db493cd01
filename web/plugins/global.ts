import type { FastifyPluginAsync, FastifyPluginOptions } from 'fastify';

/**
 * Marks a plugin as not encapsulated, so its hooks and decorators apply to the scope that
 * registers it (what the fastify-plugin package does, without the dependency).
 */
export function globalPlugin<Options extends FastifyPluginOptions>(
  name: string,
  fn: FastifyPluginAsync<Options>,
): FastifyPluginAsync<Options> {
  return Object.assign(fn, {
    [Symbol.for('skip-override')]: true,
    [Symbol.for('fastify.display-name')]: name,
  });
}
