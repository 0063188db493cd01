import { globalPlugin } from './global.js';

export interface GracefulCloseOptions {
  /** How long downloads in flight may run on after close() before their connections are cut. */
  graceMs: number;
}

/**
 * close() stops listening at once, lets responses in flight finish, and then closes their
 * connections. Node only closes the keep-alive connections that are idle at the moment close()
 * is called; one whose response was just finishing would otherwise hold close() open for the
 * whole keep-alive timeout (72 s in Fastify). So idle connections are closed as they turn idle,
 * and whatever still runs after the grace period is cut (a recipient resumes with Range).
 */
export const gracefulClose = globalPlugin<GracefulCloseOptions>('ferry-graceful-close', async (app, opts) => {
  app.addHook('preClose', (done) => {
    const server = app.server;
    const idle = setInterval(() => server.closeIdleConnections(), 100);
    const cut = setTimeout(() => server.closeAllConnections(), opts.graceMs);
    idle.unref();
    cut.unref();
    server.once('close', () => {
      clearInterval(idle);
      clearTimeout(cut);
    });
    done();
  });
});
