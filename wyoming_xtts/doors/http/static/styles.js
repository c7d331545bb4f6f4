// Speaking styles of a profile (its moods; Home Assistant calls them speakers): listed on the
// voice's card with their checks, added from checked recordings as a new voice is, removed
// after a confirmation.

import { $, api, busy, cardOf, el, say, voicePath } from './api.js';
import { clipCollector, copyClipsBox } from './clips.js';
import { confirmRemoval } from './confirm.js';
import { problemList, savedClipList } from './fields.js';
import { listenTo } from './listen.js';
import { findVoice, refreshVoices, replaceVoice, state } from './state.js';

let target = null; // the voice the form adds a style to
let collector;

export function setUpStyles() {
  const box = copyClipsBox($('#nv-clips-box'), 'st');
  $('#st-clips-place').replaceWith(box);
  collector = clipCollector(box, {
    saveLabel: 'Save style',
    listLabel: 'Recordings for the new style',
    // The sentences to read are in the language the voice speaks first.
    language: () => findVoice(target)?.languages[0] ?? 'en',
    onChange: updateSaveState,
  });
  $('#st-name').addEventListener('input', updateSaveState);
  $('#st-cancel').addEventListener('click', () => closeForm());
  $('#new-style-form').addEventListener('submit', (event) => {
    event.preventDefault();
    saveStyle(event.submitter ?? $('#st-save'));
  });
  updateSaveState();
}

// Recordings already added stay when the form is opened for another voice: they are not tied
// to one until saved.
export function openStyleForm(name) {
  target = name;
  $('#new-style-heading').textContent = `New style for “${name}”`;
  $('#new-style').hidden = false;
  updateSaveState();
  $('#new-style').scrollIntoView({ block: 'start' });
  $('#st-name').focus();
}

function closeForm() {
  $('#new-style').hidden = true;
  const card = cardOf(target);
  (card ? $('.add-style', card) : $('#voices-heading')).focus();
}

function updateSaveState() {
  const { ready, reason } = collector.readiness($('#st-name').value.trim() ? '' : 'Give the style a name.');
  $('#st-save').disabled = !state.studio.writable || !ready;
  $('#st-save-hint').textContent = reason;
}

async function saveStyle(button) {
  if ($('#st-save').disabled) return;
  const name = target;
  const style = $('#st-name').value.trim();
  const saved = await busy(button, () => api(voicePath(name, 'styles'), {
    method: 'POST',
    json: { style, uploads: collector.uploadIds(), denoise: $('#st-denoise').checked, replace: false },
  }));
  if (!saved) return;
  collector.clear();
  $('#new-style-form').reset();
  updateSaveState();
  $('#new-style').hidden = true;
  replaceVoice(saved);
  say(`The style “${style}” of “${name}” is saved; Home Assistant offers it as a speaker of the voice now.`);
  const card = cardOf(name);
  const entry = card && [...card.querySelectorAll('.style')].find((node) => node.dataset.style === style);
  (entry ? $('h5', entry) : card ? $('h3', card) : $('#voices-heading')).focus();
}

// The styles part of a voice's card, or nothing for a voice without styles.
export function styleList(voice, writable) {
  if (!voice.styles?.length) return null;
  return el('div', { class: 'styles' },
    el('h4', { text: 'Speaking styles' }),
    el('ul', { class: 'card-styles', 'aria-label': `Styles of ${voice.name}` },
      ...voice.styles.map((style) => styleEntry(voice, style, writable))));
}

function styleEntry(voice, style, writable) {
  // A clip's problems are said under that clip; the style repeats them with a prefix.
  const clipProblems = new Set(style.clips.flatMap((clip) => [...clip.errors, ...clip.warnings])
    .map((text) => `style ${style.name}: ${text}`));
  const own = (texts) => texts.filter((text) => !clipProblems.has(text));
  return el('li', { class: `style${style.usable ? '' : ' broken'}`, 'data-style': style.name },
    el('div', { class: 'card-title' },
      el('h5', { tabindex: '-1', text: style.name }),
      !style.usable && el('span', { class: 'badge broken', text: 'Cannot be used' })),
    style.description && style.description !== style.name && el('p', { class: 'description', text: style.description }),
    !style.usable && el('p', { class: 'reason', text: 'Why it cannot be used:' }),
    problemList(own(style.errors), own(style.warnings)),
    savedClipList(style.clips, `Recordings of ${voice.name} in the style ${style.name}`),
    el('div', { class: 'buttons' },
      el('button', {
        type: 'button',
        class: 'small',
        disabled: !style.usable || !voice.usable,
        'aria-label': `Listen to the style ${style.name} of ${voice.name}`,
        text: 'Listen',
        onclick: () => listenTo(voice.name, style.name),
      }),
      el('button', {
        type: 'button',
        class: 'small danger remove-style',
        disabled: !writable,
        'aria-label': `Remove the style ${style.name} of ${voice.name}`,
        text: 'Remove style',
        onclick: (event) => askToRemove(voice.name, style.name, event.currentTarget),
      })));
}

function askToRemove(name, style, button) {
  confirmRemoval({
    heading: `Remove the style “${style}” of “${name}”?`,
    text: `Its recordings are deleted from the server and Home Assistant can no longer speak “${name}” `
      + 'in this style; the voice itself stays. This cannot be undone.',
    back: button,
    remove: () => api(voicePath(name, 'styles', style), { method: 'DELETE' }),
    done: async () => {
      say(`The style “${style}” of “${name}” is removed.`);
      try {
        await refreshVoices();
      } catch (error) {
        say(error.message, 'error');
      }
      const card = cardOf(name);
      (card ? $('h3', card) : $('#voices-heading')).focus();
    },
  });
}
