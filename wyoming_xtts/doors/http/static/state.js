// What the page knows of the server: its description (limits, languages) and the voice list.
// Parts that show voices subscribe here instead of importing each other, so a change made in
// one place (a saved style, a new default) reaches the cards and both listening sides.

import { api } from './api.js';

export const state = {
  studio: null, // GET api/studio, once at start
  voices: [], // GET api/voices: profiles first, then built-in speakers
};

const watchers = [];

export function onVoicesChanged(watcher) {
  watchers.push(watcher);
}

export function setVoices(voices) {
  state.voices = voices;
  for (const watcher of watchers) watcher();
}

export async function refreshVoices() {
  const { voices } = await api('api/voices');
  setVoices(voices);
}

// The server answers a change with the voice as it now is: no need to list them all again.
export function replaceVoice(saved) {
  setVoices(state.voices.map((voice) => (voice.name === saved.name ? saved : voice)));
}

export const profiles = () => state.voices.filter((voice) => !voice.builtin);
export const builtins = () => state.voices.filter((voice) => voice.builtin);
export const findVoice = (name) => state.voices.find((voice) => voice.name === name);
