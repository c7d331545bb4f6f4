// Voice studio: start-up. Each part of the page is its own module (see the imports); this one
// asks the server what it offers, sets the parts up, and shows the page once voices are in.

import { $, api } from './api.js';
import { setUpConfirm } from './confirm.js';
import { setUpEditor } from './editor.js';
import { setUpListen, suggestSentence } from './listen.js';
import { setUpNewVoice } from './newvoice.js';
import { refreshVoices, state } from './state.js';
import { setUpStyles } from './styles.js';
import { setUpVoices } from './voices.js';

async function start() {
  try {
    state.studio = await api('api/studio');
    const { program, writable, not_writable_reason: reason } = state.studio;
    $('#program').textContent = `${program.name} ${program.version} · ${program.engine}`;
    if (!writable) {
      const banner = $('#not-writable');
      banner.textContent = `Voices cannot be made, edited or removed here: ${reason ?? 'the voices folder is read-only.'} Listening still works.`;
      banner.hidden = false;
    }
    // The style form copies the new voice's recordings box, so it goes first, while that box
    // is still as the page came.
    setUpStyles();
    setUpNewVoice();
    setUpVoices();
    setUpListen();
    setUpConfirm();
    setUpEditor();
    await refreshVoices();
    suggestSentence();
  } catch (error) {
    $('#loading').textContent = error.message;
    $('#loading').classList.add('banner');
    return;
  }
  $('#loading').hidden = true;
  $('#voices-section').hidden = false;
  $('#listen').hidden = false;
  document.body.dataset.ready = 'true';
}

start();
