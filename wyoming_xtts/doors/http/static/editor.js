// The edit dialog of a profile: description, languages, speaking settings, make default,
// remove.

import { $, api, busy, cardOf, clearDialogMessage, say, voicePath } from './api.js';
import { confirmRemoval } from './confirm.js';
import { changedSettings, languagePicker, settingsBox } from './fields.js';
import { settingsSaved } from './listen.js';
import { findVoice, refreshVoices, replaceVoice, setVoices, state } from './state.js';

let editing = null; // {name, original, description, languages} as the dialog opened
let editLanguages;
let editSettings;

export function setUpEditor() {
  const dialog = $('#edit-dialog');
  editLanguages = languagePicker($('#ed-languages'), 'ed-languages');
  editSettings = settingsBox($('#ed-settings'), 'ed');
  $('#edit-form').addEventListener('submit', (event) => {
    event.preventDefault();
    saveEdit($('#ed-save'));
  });
  $('#ed-close').addEventListener('click', () => dialog.close());
  $('#ed-default').addEventListener('click', (event) => makeDefault(event.currentTarget));
  $('#ed-remove').addEventListener('click', (event) => askToRemove(event.currentTarget));
  dialog.addEventListener('close', () => {
    const name = editing?.name;
    editing = null;
    if (!name) return;
    const card = cardOf(name);
    (card ? $('.edit', card) : $('#voices-heading')).focus();
  });
}

export function openEditor(name) {
  const voice = findVoice(name);
  if (!voice) return;
  editing = {
    name,
    original: { ...voice.synthesis },
    description: voice.description ?? '',
    languages: [...voice.languages],
  };
  const dialog = $('#edit-dialog');
  clearDialogMessage(dialog);
  $('#edit-heading').textContent = `Edit “${name}”`;
  $('#ed-description').value = voice.description ?? '';
  editLanguages.value = voice.languages;
  editSettings.fill(voice.synthesis);
  showDefaultState(voice);
  dialog.showModal();
  $('#ed-description').focus();
}

function showDefaultState(voice) {
  const { default_fixed: fixed } = state.studio;
  const button = $('#ed-default');
  button.disabled = fixed || voice.default || !voice.usable;
  let note = '';
  if (voice.default) note = `“${voice.name}” is the default voice.`;
  else if (fixed) note = 'The default voice is fixed by the server’s --default-voice option.';
  else if (!voice.usable) note = 'A voice that cannot be used cannot be the default.';
  $('#ed-default-note').textContent = note;
}

async function saveEdit(button) {
  const dialog = $('#edit-dialog');
  clearDialogMessage(dialog);
  const { name, original } = editing;
  let unchanged = false;
  const saved = await busy(button, () => {
    const synthesis = changedSettings(editSettings.read(), original);
    const json = {};
    const description = $('#ed-description').value.trim();
    if (description !== editing.description) json.description = description;
    if (editLanguages.value.join() !== editing.languages.join()) json.languages = editLanguages.value;
    if (Object.keys(synthesis).length) json.synthesis = synthesis;
    unchanged = Object.keys(json).length === 0;
    return unchanged ? findVoice(name) : api(voicePath(name), { method: 'PATCH', json });
  });
  if (!saved) return;
  if (unchanged) {
    dialog.close();
    say(`Nothing to save: “${name}” is as it was.`);
    return;
  }
  replaceVoice(saved);
  settingsSaved(name);
  dialog.close();
  say(`The changes to “${name}” are saved.`);
}

async function makeDefault(button) {
  const { name } = editing;
  const done = await busy(button, () => api('api/default-voice', { method: 'PUT', json: { voice: name } }));
  if (!done) return;
  state.studio.default_voice = done.default_voice;
  setVoices(state.voices.map((voice) => ({ ...voice, default: voice.name === done.default_voice })));
  showDefaultState(findVoice(name));
  say(`“${name}” is now the default voice.`);
}

function askToRemove(button) {
  const { name } = editing;
  confirmRemoval({
    heading: `Remove “${name}”?`,
    text: 'Its recordings are deleted from the server and Home Assistant '
      + 'can no longer speak with this voice. This cannot be undone.',
    back: button,
    remove: () => api(voicePath(name), { method: 'DELETE' }),
    done: async () => {
      editing = null; // nothing to return focus to: the card is gone
      $('#edit-dialog').close();
      say(`The voice “${name}” is removed.`);
      try {
        await refreshVoices();
      } catch (error) {
        say(error.message, 'error');
      }
      $('#voices-heading').focus();
    },
  });
}
