import { displayName, type Transfer } from '../../storage/index.js';
import { humanTime, isoTime } from '../format.js';
import { html } from '../html.js';
import { PASSWORD_MESSAGES } from '../i18n.js';
import { layout, type PageContext } from './layout.js';
import { senderLink } from './status.js';

// The pages of a password-protected transfer before it is unlocked (docs/passwords.md): the
// prompt, and the page of a lock after too many wrong guesses. Neither names a file, a size or
// the subject: that is what the password protects. The sender is named, so the recipient knows
// whom to ask. No script is needed; the form posts to /t/<token>/unlock.

export interface PromptInput {
  transfer: Transfer;
  /** Path the form posts to (the public URL's prefix included, ?lang= kept). */
  action: string;
  error?: { kind: 'empty' } | { kind: 'wrong'; left: number };
}

function sender(transfer: Transfer) {
  const name = displayName(transfer.sender, '');
  return name ? (senderLink(name) ?? html`${name}`) : undefined;
}

export function passwordPage(ctx: PageContext, input: PromptInput, status: number): string {
  const p = PASSWORD_MESSAGES[ctx.lang];
  const error = input.error ? (input.error.kind === 'empty' ? p.empty : p.wrong(input.error.left)) : undefined;
  const describedBy = error ? 'pw-error pw-hint' : 'pw-hint';
  return layout(
    ctx,
    p.title,
    html`<h1>${p.title}</h1>
<div class="card panel">
<p>${p.intro(sender(input.transfer))}</p>
<p>${p.whereFrom}</p>
${error ? html`<p class="flash error" id="pw-error" role="alert">${error}</p>` : ''}
<form class="unlock" method="post" action="${input.action}">
<label class="field" for="pw">${p.label}</label>
<input class="pw" id="pw" name="password" type="password" required maxlength="200" autocomplete="off" autocapitalize="characters" spellcheck="false" aria-describedby="${describedBy}"${error ? html` aria-invalid="true" autofocus` : ''}>
<p class="hint" id="pw-hint">${p.hint}</p>
<button class="btn primary" type="submit">${p.submit}</button>
</form>
</div>`,
    { status },
  );
}

export function lockedPage(ctx: PageContext, transfer: Transfer, lockedUntil: number, everyone: boolean): string {
  const p = PASSWORD_MESSAGES[ctx.lang];
  const until = html`<time datetime="${isoTime(lockedUntil)}" data-local>${humanTime(lockedUntil, ctx.t.locale)}</time>`;
  const who = sender(transfer);
  return layout(
    ctx,
    p.lockedTitle,
    html`<h1>${p.lockedTitle}</h1>
<div class="card notice">
<p>${p.lockedBody(until, everyone)}</p>
<p>${p.lockedRightToo}${who ? html` ${p.lockedTold}` : ''}</p>
<p>${p.lockedAsk(who)}</p>
</div>`,
    { status: 429 },
  );
}
