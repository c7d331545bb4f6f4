// The "New voice" form: a name, languages and checked recordings, saved as one profile.

import { $, api, busy, cardOf, say } from './api.js';
import { clipCollector } from './clips.js';
import { languagePicker } from './fields.js';
import { refreshVoices, state } from './state.js';

let languages;
let collector;

export function setUpNewVoice() {
  const { writable } = state.studio;
  languages = languagePicker($('#nv-languages'), 'nv-languages', () => collector.showSentence(0));
  languages.value = ['en'];
  collector = clipCollector($('#nv-clips-box'), {
    saveLabel: 'Save voice',
    listLabel: 'Recordings for the new voice',
    language: () => languages.value[0],
    onChange: updateSaveState,
  });

  const open = $('#new-voice-open');
  open.disabled = !writable;
  open.addEventListener('click', () => toggleNewVoice($('#new-voice').hidden));
  $('#nv-cancel').addEventListener('click', () => toggleNewVoice(false));
  $('#nv-name').addEventListener('input', updateSaveState);
  $('#new-voice-form').addEventListener('submit', (event) => {
    event.preventDefault();
    saveNewVoice(event.submitter ?? $('#nv-save'));
  });
  updateSaveState();
}

function toggleNewVoice(show) {
  $('#new-voice').hidden = !show;
  $('#new-voice-open').setAttribute('aria-expanded', String(show));
  if (show) {
    $('#new-voice').scrollIntoView({ block: 'start' });
    $('#nv-name').focus();
  } else {
    $('#new-voice-open').focus();
  }
}

function updateSaveState() {
  const { ready, reason } = collector.readiness($('#nv-name').value.trim() ? '' : 'Give the voice a name.');
  $('#nv-save').disabled = !state.studio.writable || !ready;
  $('#save-hint').textContent = reason;
}

async function saveNewVoice(button) {
  if ($('#nv-save').disabled) return;
  const name = $('#nv-name').value.trim();
  const saved = await busy(button, () => api('api/voices', {
    method: 'POST',
    json: {
      name,
      description: $('#nv-description').value.trim(),
      languages: languages.value,
      uploads: collector.uploadIds(),
      denoise: $('#nv-denoise').checked,
      replace: false,
    },
  }));
  if (!saved) return;
  collector.clear();
  $('#new-voice-form').reset();
  languages.value = ['en'];
  updateSaveState();
  $('#new-voice').hidden = true;
  $('#new-voice-open').setAttribute('aria-expanded', 'false');
  say(`The voice “${saved.name}” is saved; Home Assistant can use it now.`);
  try {
    await refreshVoices();
  } catch (error) {
    say(error.message, 'error');
  }
  const card = cardOf(saved.name);
  (card ? $('h3', card) : $('#voices-heading')).focus();
}
