// Playing sound: one thing at a time (comparing means hearing one side at a time), and a
// failure told as the server's sentence rather than the media element's bare "error".

import { UNREACHABLE, errorSentence } from './api.js';

// The clip preview plays through an Audio object that is in no page element.
let clipPlayer = null;

export function setClipPlayer(player) {
  clipPlayer = player;
}

export const currentClipPlayer = () => clipPlayer;

export function pauseAllBut(playing) {
  for (const other of document.querySelectorAll('.player')) if (other !== playing) other.pause();
  if (clipPlayer !== playing) clipPlayer?.pause();
}

// Plays `audio` and settles when sound starts; on failure the server's sentence is fetched
// from the same URL, because a media element only reports that something went wrong.
export function playAudio(audio, url) {
  return new Promise((resolve, reject) => {
    const done = () => {
      audio.removeEventListener('playing', onPlaying);
      audio.removeEventListener('error', onError);
    };
    const onPlaying = () => { done(); resolve(); };
    const onError = () => {
      done();
      explainAudioError(url).then((message) => reject(new Error(message)));
    };
    audio.addEventListener('playing', onPlaying);
    audio.addEventListener('error', onError);
    audio.play().catch((error) => {
      if (error.name === 'NotAllowedError') {
        done();
        reject(new Error('The browser blocked playing by itself; press the player’s play button.'));
      }
      // Any other rejection comes with an `error` event, which explains it.
    });
  });
}

async function explainAudioError(url) {
  try {
    const response = await fetch(url);
    if (!response.ok) return errorSentence(await response.json().catch(() => null), response);
    return 'This browser cannot play the audio the server sent.';
  } catch {
    return UNREACHABLE;
  }
}
