// oidc-provider (a dev dependency, the test identity provider) ships no type declarations;
// the test uses its documented constructor and callback() only.
declare module 'oidc-provider' {
  import type { RequestListener } from 'node:http';
  export default class Provider {
    constructor(issuer: string, configuration: Record<string, unknown>);
    callback(): RequestListener;
  }
}
