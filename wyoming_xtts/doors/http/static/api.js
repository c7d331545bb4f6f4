// Talking to the server and to the person: the fetch wrapper, element building, the message
// bar and waiting buttons. Every URL is relative without a leading slash: the page is served
// under any path prefix (Home Assistant ingress), so `api/voices` resolves next to the page.

export const $ = (selector, root = document) => root.querySelector(selector);

export const UNREACHABLE = 'The server cannot be reached; check that it is running, then try again.';

class ApiError extends Error {
  constructor(message, code) {
    super(message);
    this.code = code;
  }
}

export async function api(path, { method = 'GET', json, form } = {}) {
  const init = { method };
  if (json !== undefined) {
    init.headers = { 'Content-Type': 'application/json' };
    init.body = JSON.stringify(json);
  } else if (form) {
    init.body = form; // fetch writes the multipart Content-Type with its boundary
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch {
    throw new ApiError(UNREACHABLE, 'network');
  }
  if (response.status === 204) return null;
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    throw new ApiError(errorSentence(body, response), body?.error?.code);
  }
  return body;
}

// The server explains every failure in a sentence meant for people; that is what is shown.
export function errorSentence(body, response) {
  return body?.error?.message
    ?? `The server answered “${response.status} ${response.statusText}” without saying why.`;
}

// Path segments are names people typed (spaces, dots): always encoded.
export const voicePath = (name, ...rest) => ['api/voices', name, ...rest].map(
  (part, index) => (index ? encodeURIComponent(part) : part),
).join('/');

export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') node.className = value;
    else if (key === 'text') node.textContent = value;
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? '' : value);
  }
  node.append(...children.filter((child) => child !== null && child !== undefined && child !== false));
  return node;
}

export function say(text, kind = 'ok') {
  // A modal dialog makes the rest of the page inert, so its own errors are shown inside it.
  const dialog = [...document.querySelectorAll('dialog[open]')].pop();
  if (dialog && kind === 'error') {
    const box = $('.dialog-message', dialog);
    box.textContent = text;
    box.hidden = false;
    return;
  }
  const area = $('#message-area');
  area.setAttribute('aria-live', kind === 'error' ? 'assertive' : 'polite');
  const close = el('button', { type: 'button', class: 'plain', 'aria-label': 'Dismiss the message', text: '✕' });
  close.addEventListener('click', () => area.replaceChildren());
  area.replaceChildren(el('div', { class: `message ${kind}` }, el('p', { text }), close));
}

export function clearDialogMessage(dialog) {
  const box = $('.dialog-message', dialog);
  box.hidden = true;
  box.textContent = '';
}

// Runs `work` while `button` shows it is waiting; a failure is shown as the server's sentence.
// aria-disabled rather than disabled keeps keyboard focus on the button.
export async function busy(button, work) {
  if (button.getAttribute('aria-busy') === 'true') return undefined;
  button.setAttribute('aria-busy', 'true');
  button.setAttribute('aria-disabled', 'true');
  try {
    return await work();
  } catch (error) {
    say(error.message, 'error');
    return undefined;
  } finally {
    button.removeAttribute('aria-busy');
    button.removeAttribute('aria-disabled');
  }
}

// Cards are redrawn after every change, so focus is put back on the redrawn control by name.
export function cardOf(name) {
  return [...document.querySelectorAll('#profiles .card')].find((node) => node.dataset.voice === name);
}
