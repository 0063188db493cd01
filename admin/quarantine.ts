import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { deleteHeldFile, fileScans, listQuarantined, releaseFile, type QuarantinedFile } from '../storage/index.js';
import { ApiError } from './api-errors.js';
import type { AdminContext } from './context.js';

// /admin/api/quarantine: files held by the malware scan (scan.onInfected: quarantine) or blocked
// by a rescan, and the two things an admin does with one: release it (served again) or delete it
// (bytes removed, the page says so). Registered by api.ts inside its bearer-token scope, so
// read-only tokens may list but not change; every change is audited (storage/scan.ts).

export function quarantinedJson(f: QuarantinedFile) {
  return {
    transferId: f.transferId,
    idx: f.idx,
    name: f.name,
    size: f.size,
    sender: f.sender,
    signature: f.signature,
    engine: f.engine,
    signatureVersion: f.version,
    reason: f.reason === 'rescan' ? 'blocked after a rescan' : 'held at intake',
    blockedAt: new Date(f.blockedAt).toISOString(),
  };
}

function params(raw: unknown): { id: string; idx: number } {
  const p = raw as { id?: string; idx?: string };
  if (!p.id || !/^[A-Za-z0-9_-]{1,64}$/.test(p.id) || !/^[1-9][0-9]{0,8}$/.test(p.idx ?? '')) throw new ApiError(400, 'FERRY_ERR_BAD_INPUT', 'expected /quarantine/TRANSFER_ID/FILE_NUMBER');
  return { id: p.id, idx: Number(p.idx) };
}

export const quarantineApi: FastifyPluginAsync<{ ctx: AdminContext }> = async (app, { ctx }) => {
  const actor = (request: FastifyRequest) => `admin:${request.ferryAdmin!.name}`;

  app.get('/quarantine', async () => ({ items: (await listQuarantined(ctx.db)).map(quarantinedJson) }));

  /** The scan record of every file of a transfer (verdict, engine, signature version, time). */
  app.get('/transfers/:id/scans', async (request) => {
    const id = (request.params as { id: string }).id;
    const scans = await fileScans(ctx.db, id);
    return {
      items: [...scans.entries()].map(([idx, s]) => ({
        idx,
        verdict: s.verdict,
        engine: s.engine,
        signatureVersion: s.version,
        signature: s.signature,
        scannedAt: s.at ? new Date(s.at).toISOString() : null,
        blocked: s.blocked,
        blockedReason: s.blockedReason,
        releasedAt: s.releasedAt ? new Date(s.releasedAt).toISOString() : null,
        releasedBy: s.releasedBy,
      })),
    };
  });

  app.post('/quarantine/:id/:idx/release', async (request) => {
    const { id, idx } = params(request.params);
    if (!(await releaseFile(ctx.db, id, idx, actor(request), ctx.now()))) throw new ApiError(404, 'FERRY_ERR_NOT_HELD', `file ${idx} of transfer ${id} is not held`);
    return { released: true };
  });

  app.post('/quarantine/:id/:idx/delete', async (request) => {
    const { id, idx } = params(request.params);
    if (!(await deleteHeldFile(ctx.db, ctx.blobs, id, idx, actor(request), ctx.now()))) throw new ApiError(404, 'FERRY_ERR_NOT_HELD', `file ${idx} of transfer ${id} is not held`);
    return { deleted: true };
  });
};
