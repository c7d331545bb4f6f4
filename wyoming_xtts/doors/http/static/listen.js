// Listen & compare: one sentence in one voice, or in two side by side (A and B), each side with
// its own style and speaking settings, streamed as MP3 into its player.

import { $, api, busy, el, say, voicePath } from './api.js';
import { pauseAllBut, playAudio } from './audio.js';
import { changedSettings, settingsBox } from './fields.js';
import { builtins, findVoice, onVoicesChanged, profiles, replaceVoice, state } from './state.js';

const sides = [];

export function setUpListen() {
  const { limits } = state.studio;
  const text = $('#sentence');
  text.maxLength = limits.text_chars;
  const count = () => { $('#sentence-count').textContent = `${text.value.length} of ${limits.text_chars} characters`; };
  text.addEventListener('input', count);
  count();
  sides.push(makeSide('A'), makeSide('B'));
  onVoicesChanged(() => { for (const side of sides) side.refreshChoices(); });
}

// The suggested sentence is in the default voice's language, known once voices are loaded.
export function suggestSentence() {
  const { sentences, limits } = state.studio;
  const language = state.voices.find((voice) => voice.default)?.languages[0] ?? 'en';
  const suggestion = (sentences[language] ?? sentences.en ?? [])[0] ?? 'Hello! This is how I sound.';
  const text = $('#sentence');
  text.value = suggestion.slice(0, limits.text_chars);
  text.dispatchEvent(new Event('input'));
}

export function listenTo(name, style = '') {
  sides[0].choose(name, style);
  $('#listen').scrollIntoView({ block: 'start' });
  $('.play', $('#side-a')).focus();
}

// A voice's saved settings changed: sides showing it show them (`except` already does).
export function settingsSaved(name, except = null) {
  for (const side of sides) if (side !== except && side.voice?.name === name) side.prefill();
}

function makeSide(letter) {
  const node = $('#side-template').content.firstElementChild.cloneNode(true);
  const prefix = `side-${letter.toLowerCase()}`;
  node.id = prefix;
  $('.side-name', node).textContent = letter;
  const select = $('.voice-select', node);
  select.id = `${prefix}-voice`;
  $('.voice-label', node).htmlFor = select.id;
  const styleSelect = $('.style-select', node);
  styleSelect.id = `${prefix}-style`;
  $('.style-label', node).htmlFor = styleSelect.id;
  const settings = settingsBox($('.settings', node), prefix);
  const play = $('.play', node);
  const store = $('.store', node);
  const audio = $('.player', node);
  play.textContent = `Play ${letter}`;
  audio.setAttribute('aria-label', `Side ${letter} audio`);

  const side = {
    get voice() { return findVoice(select.value); },
    choose(name, style = '') {
      select.value = name;
      this.prefill();
      this.showStyles(style, false);
    },
    prefill() {
      const voice = this.voice;
      settings.fill(voice?.synthesis);
      const editable = voice && !voice.builtin && state.studio.writable;
      store.disabled = !editable;
      store.textContent = voice && !voice.builtin ? `Save these settings to ${voice.name}` : 'Save these settings';
      store.title = voice?.builtin ? 'Built-in speakers keep their settings.' : '';
    },
    // `keep`: a style that is gone since it was chosen stays chosen, as a removed voice does.
    showStyles(wanted, keep) {
      const usable = (this.voice?.styles ?? []).filter((style) => style.usable).map((style) => style.name);
      const options = [el('option', { value: '', text: 'Plain' }),
        ...usable.map((name) => el('option', { value: name, text: name }))];
      if (wanted && keep && !usable.includes(wanted)) options.push(el('option', { value: wanted, text: wanted }));
      styleSelect.replaceChildren(...options);
      styleSelect.value = usable.includes(wanted) || keep ? wanted : '';
      styleSelect.disabled = options.length < 2;
    },
    refreshChoices() {
      const previous = select.value;
      const own = profiles();
      const speakers = builtins();
      select.replaceChildren(
        own.length && el('optgroup', { label: 'Your voices' }, ...own.map((voice) => el('option', {
          value: voice.name,
          disabled: !voice.usable,
          text: voice.usable ? voice.name : `${voice.name} (cannot be used)`,
        }))),
        speakers.length && el('optgroup', { label: 'Built-in speakers' },
          ...speakers.map((voice) => el('option', { value: voice.name, text: voice.name }))),
      );
      // A voice removed behind the page's back stays chosen: playing it explains what happened.
      if (previous && !findVoice(previous)) select.prepend(el('option', { value: previous, text: previous }));
      const fallback = state.voices.find((voice) => voice.default && voice.usable)
        ?? state.voices.find((voice) => voice.usable);
      select.value = previous || fallback?.name || '';
      if (!previous) this.prefill();
      this.showStyles(styleSelect.value, true);
    },
    url() {
      const values = settings.read();
      const style = styleSelect.value;
      const query = new URLSearchParams({ voice: select.value });
      if (style) query.set('style', style);
      query.set('text', $('#sentence').value);
      query.set('format', 'mp3');
      // The boxes show the voice's own settings; a style may have settings of its own, so
      // with a style only the boxes changed here are sent, and the style's apply otherwise.
      const sent = style ? changedSettings(values, this.voice?.synthesis) : values;
      for (const [key, value] of Object.entries(sent)) if (value !== null) query.set(key, value);
      return `api/speech?${query}`;
    },
  };
  select.addEventListener('change', () => {
    side.prefill();
    side.showStyles(styleSelect.value, false); // the same mood in another voice, if it has it
  });
  play.addEventListener('click', () => busy(play, () => {
    const url = side.url();
    pauseAllBut(audio); // comparing means hearing one side at a time
    audio.src = url;
    return playAudio(audio, url);
  }));
  audio.addEventListener('play', () => pauseAllBut(audio));
  store.addEventListener('click', () => busy(store, async () => {
    const voice = side.voice;
    if (!voice) throw new Error(`There is no voice named “${select.value}” any more.`);
    const synthesis = changedSettings(settings.read(), voice.synthesis);
    if (!Object.keys(synthesis).length) {
      say(`These already are the settings of “${voice.name}”.`);
      return;
    }
    replaceVoice(await api(voicePath(voice.name), { method: 'PATCH', json: { synthesis } }));
    settingsSaved(voice.name, side);
    say(`The settings of side ${letter} are saved to “${voice.name}”.`);
  }));
  $('.sides').append(node);
  return side;
}
