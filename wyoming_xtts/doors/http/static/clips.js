// Recordings gathered for a new voice or a new style: each is uploaded as soon as it is added,
// checked by the server and shown with its verdict; nothing is kept until the form is saved.
// Both forms use the same box of controls (the style form's is a copy of the new voice's).

import { api, busy, el, say } from './api.js';
import { currentClipPlayer, pauseAllBut, playAudio, setClipPlayer } from './audio.js';
import { audioFacts, problemList } from './fields.js';
import { recording, startRecording, stopRecording } from './recorder.js';
import { state } from './state.js';

// A counter, not crypto.randomUUID(): that only exists on https, and many open the studio over
// plain http on the home network. Page-wide, because the clip preview player is shared.
let clipCount = 0;

const ID_ATTRIBUTES = ['id', 'for', 'aria-describedby', 'aria-labelledby', 'aria-controls'];

// The new voice's recordings box, copied for another form: its ids (and the labels and
// descriptions that point at them) get the form's own prefix so they stay unique.
export function copyClipsBox(source, prefix) {
  const copy = source.cloneNode(true);
  const rename = (id) => `${prefix}-${id.replace(/^nv-/, '')}`;
  for (const node of [copy, ...copy.querySelectorAll('*')]) {
    for (const attribute of ID_ATTRIBUTES) {
      const value = node.getAttribute(attribute);
      if (value) node.setAttribute(attribute, value.split(/\s+/).map(rename).join(' '));
    }
  }
  return copy;
}

const forgetUpload = (clip) => {
  if (clip.upload) api(`api/uploads/${encodeURIComponent(clip.upload.id)}`, { method: 'DELETE' }).catch(() => {});
};

// `box` holds the controls, found by their data-part; `language()` picks the sentences to read;
// `onChange()` is told whenever the clips or their verdicts change.
export function clipCollector(box, { saveLabel, listLabel, language, onChange }) {
  const part = (name) => box.querySelector(`[data-part="${name}"]`);
  const parts = Object.fromEntries(['file', 'start', 'recorder', 'sentence', 'next', 'time', 'level', 'max',
    'stop', 'cancel', 'list', 'hint'].map((name) => [name, part(name)]));
  let clips = []; // {key, name, status: pending|ok|bad, upload, problem, removed}
  let sentenceIndex = 0;

  const { limits } = state.studio;
  const [best, most] = limits.clip_best_s;
  parts.hint.textContent = `Add up to ${limits.clips_per_voice} recordings of one person speaking: `
    + `${best}–${most} s each works best, at least ${limits.clip_min_s} s of speech. `
    + `Each is checked as soon as it is added; nothing is saved until you press “${saveLabel}”.`;
  parts.max.textContent = `stops by itself at ${limits.record_max_s} s`;
  parts.list.setAttribute('aria-label', listLabel);

  const changed = () => {
    const full = clips.length >= limits.clips_per_voice;
    parts.file.disabled = full;
    parts.start.disabled = full || recording();
    onChange();
  };

  function showSentence(step) {
    const code = language();
    const list = state.studio.sentences[code] ?? state.studio.sentences.en ?? [];
    sentenceIndex = list.length ? (sentenceIndex + step) % list.length : 0;
    parts.sentence.textContent = list[sentenceIndex] ?? 'Talk about your day for half a minute.';
    parts.sentence.lang = state.studio.sentences[code] ? code : 'en';
    parts.next.hidden = list.length < 2;
  }

  async function addClip(file) {
    clipCount += 1;
    const clip = { key: String(clipCount), name: file.name, status: 'pending', upload: null, problem: null };
    clips.push(clip);
    const limit = limits.upload_bytes;
    if (file.size > limit) {
      const mb = (bytes) => `${(bytes / 1e6).toFixed(1)} MB`;
      clip.status = 'bad';
      clip.problem = `${file.name} is ${mb(file.size)}; the server takes files up to ${mb(limit)}.`;
    }
    showClip(clip);
    if (clip.status === 'bad') return;
    const form = new FormData();
    form.append('clip', file, file.name);
    try {
      clip.upload = await api('api/uploads', { method: 'POST', form });
      clip.status = clip.upload.ok ? 'ok' : 'bad';
    } catch (error) {
      clip.status = 'bad';
      clip.problem = error.message;
      say(error.message, 'error');
    }
    if (clip.removed) {
      forgetUpload(clip);
      return;
    }
    showClip(clip);
  }

  // Entries are replaced one at a time, so focus on another clip's buttons stays where it is.
  function showClip(clip) {
    const fresh = clipEntry(clip);
    const old = parts.list.querySelector(`[data-key="${clip.key}"]`);
    if (old) old.replaceWith(fresh);
    else parts.list.append(fresh);
    changed();
  }

  function dropClip(clip) {
    clips = clips.filter((other) => other !== clip);
    parts.list.querySelector(`[data-key="${clip.key}"]`)?.remove();
    changed();
  }

  function clipEntry(clip) {
    const { upload } = clip;
    let verdict = 'Checking…';
    if (clip.problem) verdict = clip.problem;
    else if (upload) verdict = upload.verdict || (upload.ok ? 'Can be used.' : 'Cannot be used.');
    const play = upload?.ok && el('button', {
      type: 'button',
      class: 'small play-clip',
      'aria-label': `Play the cleaned ${clip.name}`,
      text: 'Play',
      onclick: (event) => playClip(clip, event.currentTarget),
    });
    const remove = el('button', {
      type: 'button',
      class: 'small remove-clip',
      'aria-label': `Remove ${clip.name}`,
      text: 'Remove',
      onclick: (event) => removeClip(clip, event.currentTarget),
    });
    // The verdict sentence often quotes the first error or the warnings: list only the rest.
    const unsaid = (texts = []) => texts.filter((text) => !verdict.includes(text));
    return el('li', { class: `clip ${clip.status}`, 'data-key': clip.key, 'aria-busy': clip.status === 'pending' ? 'true' : null },
      el('div', { class: 'clip-head' },
        el('span', { class: 'clip-name', text: clip.name }),
        el('div', { class: 'buttons' }, play, remove)),
      el('p', { class: 'verdict', text: verdict }),
      upload && el('p', { class: 'muted facts', text: audioFacts(upload) }),
      upload && problemList(unsaid(upload.errors), unsaid(upload.warnings)));
  }

  // One player for every clip; the button toggles between Play and Stop.
  function playClip(clip, button) {
    const current = currentClipPlayer();
    const playing = current && !current.paused && current.clipKey === clip.key;
    pauseAllBut(null);
    if (playing) return undefined;
    const url = `api/uploads/${encodeURIComponent(clip.upload.id)}/audio`;
    const player = new Audio(url);
    player.clipKey = clip.key;
    setClipPlayer(player);
    const show = (on) => {
      button.textContent = on ? 'Stop' : 'Play';
      button.setAttribute('aria-label', `${on ? 'Stop' : 'Play the cleaned'} ${clip.name}`);
    };
    player.addEventListener('playing', () => show(true));
    player.addEventListener('pause', () => show(false));
    player.addEventListener('ended', () => show(false));
    return busy(button, () => playAudio(player, url));
  }

  async function removeClip(clip, button) {
    clip.removed = true;
    if (clip.status === 'pending') {
      // Removed while still uploading: addClip forgets the upload when it arrives.
      dropClip(clip);
      parts.file.focus();
      return;
    }
    await busy(button, async () => {
      if (clip.upload) await api(`api/uploads/${encodeURIComponent(clip.upload.id)}`, { method: 'DELETE' });
      if (currentClipPlayer()?.clipKey === clip.key) currentClipPlayer().pause();
      dropClip(clip);
      parts.file.focus();
    });
  }

  parts.file.addEventListener('change', (event) => {
    for (const file of event.target.files) addClip(file);
    event.target.value = ''; // the same file can be chosen again after removing it
  });
  parts.start.addEventListener('click', () => {
    showSentence(0);
    startRecording(parts, addClip, changed);
  });
  parts.stop.addEventListener('click', () => stopRecording(false));
  parts.cancel.addEventListener('click', () => stopRecording(true));
  parts.next.addEventListener('click', () => showSentence(1));

  return {
    showSentence,
    // Whether the form can be saved, and if not (or not all of it) why, in a sentence.
    readiness(missingName) {
      const pending = clips.filter((clip) => clip.status === 'pending').length;
      const good = clips.filter((clip) => clip.status === 'ok').length;
      let reason = '';
      if (missingName) reason = missingName;
      else if (pending) reason = 'Wait until every recording is checked.';
      else if (!good) reason = 'Add at least one usable recording.';
      else if (good < clips.length) reason = 'Recordings that cannot be used are left out.';
      return { ready: !missingName && !pending && good > 0, reason };
    },
    uploadIds: () => clips.filter((clip) => clip.status === 'ok').map((clip) => clip.upload.id),
    // After saving: the server took the usable uploads; unusable ones are tidied away.
    clear() {
      for (const clip of clips) if (clip.status !== 'ok') forgetUpload(clip);
      clips = [];
      parts.list.replaceChildren();
      changed();
    },
  };
}
