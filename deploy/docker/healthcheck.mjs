// The image's HEALTHCHECK: asks Ferry's /healthz. The image has no curl or wget (node:24-slim),
// and Node's own fetch is enough. FERRY_HEALTHCHECK_URL points it elsewhere, e.g. at the
// metrics.port listener of a `ferry gateway` container (http://127.0.0.1:9464/healthz).
const url = process.env.FERRY_HEALTHCHECK_URL || 'http://127.0.0.1:8080/healthz';
const timer = setTimeout(() => {
  console.error(`healthcheck: ${url} did not answer within 5 s`);
  process.exit(1);
}, 5000);
try {
  const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
  clearTimeout(timer);
  if (!res.ok) {
    console.error(`healthcheck: ${url} answered ${res.status}`);
    process.exit(1);
  }
  process.exit(0);
} catch (err) {
  console.error(`healthcheck: ${url}: ${err?.cause?.code ?? err?.message ?? err}`);
  process.exit(1);
}
