// The voice list: a card per profile (with its checks and styles), the built-in speakers apart,
// and which voice Home Assistant gets when it asks for none.

import { $, el } from './api.js';
import { openEditor } from './editor.js';
import { languageName, problemList, savedClipList } from './fields.js';
import { listenTo } from './listen.js';
import { builtins, onVoicesChanged, profiles, state } from './state.js';
import { openStyleForm, styleList } from './styles.js';

export function setUpVoices() {
  onVoicesChanged(renderVoices);
}

function renderVoices() {
  const { writable } = state.studio;
  const own = profiles();
  $('#profiles').replaceChildren(...own.map((voice) => profileCard(voice, writable)));
  $('#no-profiles').hidden = own.length > 0;

  const speakers = builtins();
  $('#builtins').hidden = speakers.length === 0;
  $('#builtin-count').textContent = speakers.length;
  $('#builtin-list').replaceChildren(...speakers.map((voice) => el('li', {},
    el('button', {
      type: 'button',
      class: 'small',
      'aria-label': `Listen to ${voice.name}`,
      text: voice.name,
      onclick: () => listenTo(voice.name),
    }))));

  const current = state.voices.find((voice) => voice.default)?.name ?? state.studio.default_voice;
  const note = $('#default-note');
  note.textContent = current
    ? `Home Assistant speaks in “${current}” when it asks for no particular voice${state.studio.default_fixed ? ' (fixed by the server’s --default-voice option)' : ''}.`
    : '';
}

function profileCard(voice, writable) {
  // A clip's problems are said under that clip; the voice repeats them among its own.
  const clipProblems = new Set(voice.clips.flatMap((clip) => [...clip.errors, ...clip.warnings]));
  const ownErrors = voice.errors.filter((text) => !clipProblems.has(text));
  const ownWarnings = voice.warnings.filter((text) => !clipProblems.has(text));
  return el('li', {
    class: `card${voice.usable ? '' : ' broken'}${voice.default ? ' is-default' : ''}`,
    'data-voice': voice.name,
  },
  el('div', { class: 'card-title' },
    el('h3', { tabindex: '-1', text: voice.name }),
    voice.default && el('span', { class: 'badge default', text: 'Default voice' }),
    !voice.usable && el('span', { class: 'badge broken', text: 'Cannot be used' })),
  el('p', { class: voice.description ? 'description' : 'description muted', text: voice.description || 'No description.' }),
  el('p', { class: 'languages-line', text: `Speaks ${voice.languages.map(languageName).join(', ')}.` }),
  !voice.usable && el('p', { class: 'reason', text: 'Why it cannot be used:' }),
  problemList(ownErrors, ownWarnings),
  savedClipList(voice.clips, `Recordings of ${voice.name}`),
  styleList(voice, writable),
  el('div', { class: 'buttons' },
    el('button', {
      type: 'button',
      disabled: !voice.usable,
      'aria-label': `Listen to ${voice.name}`,
      text: 'Listen',
      onclick: () => listenTo(voice.name),
    }),
    el('button', {
      type: 'button',
      class: 'edit',
      disabled: !writable,
      'aria-label': `Edit ${voice.name}`,
      text: 'Edit',
      onclick: () => openEditor(voice.name),
    }),
    el('button', {
      type: 'button',
      class: 'add-style',
      disabled: !writable,
      'aria-label': `Add a style to ${voice.name}`,
      text: 'Add a style',
      onclick: () => openStyleForm(voice.name),
    })));
}
