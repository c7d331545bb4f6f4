// Voice studio. Every URL is relative without a leading slash: the page is served under any
// path prefix (Home Assistant ingress), so `api/voices` resolves next to the page itself.

const $ = (selector, root = document) => root.querySelector(selector);

// Only the sampling settings that change how a voice sounds; length_penalty is left out
// because it only matters for beam search, which XTTS does not use here.
const SETTINGS = [
  ['temperature', 'Temperature', 'Lower is steadier, higher is livelier.'],
  ['speed', 'Speed', '1 is the voice’s own pace.'],
  ['top_k', 'Top k', 'Fewer choices per step.'],
  ['top_p', 'Top p', 'Smaller is more predictable.'],
  ['repetition_penalty', 'Repetition penalty', 'Against stutters and long pauses.'],
  ['seed', 'Seed', 'Same seed, same take; empty is random.'],
];

const state = {
  studio: null,
  voices: [],
  clips: [], // recordings of the voice being made: {key, name, status, upload, problem}
  recordings: 0,
  clipCount: 0,
};

class ApiError extends Error {
  constructor(message, code) {
    super(message);
    this.code = code;
  }
}

async function api(path, { method = 'GET', json, form } = {}) {
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
    throw new ApiError('The server cannot be reached; check that it is running, then try again.', 'network');
  }
  if (response.status === 204) return null;
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    throw new ApiError(errorSentence(body, response), body?.error?.code);
  }
  return body;
}

function errorSentence(body, response) {
  return body?.error?.message
    ?? `The server answered “${response.status} ${response.statusText}” without saying why.`;
}

function el(tag, attributes = {}, ...children) {
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

// ---- messages and busy buttons -------------------------------------------------------------

function say(text, kind = 'ok') {
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

function clearDialogMessage(dialog) {
  const box = $('.dialog-message', dialog);
  box.hidden = true;
  box.textContent = '';
}

// Runs `work` while `button` shows it is waiting; a failure is shown as the server's sentence.
// aria-disabled rather than disabled keeps keyboard focus on the button.
async function busy(button, work) {
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

// ---- formatting ----------------------------------------------------------------------------

const seconds = (value) => `${Number(value ?? 0).toFixed(1)} s`;

function languageName(code) {
  return state.studio.languages.find((language) => language.code === code)?.name ?? code;
}

function audioFacts(item) {
  const facts = [];
  if (item.duration_s) facts.push(`${seconds(item.duration_s)} long`);
  if (item.speech_s !== undefined && item.duration_s) facts.push(`${seconds(item.speech_s)} of speech`);
  if (item.prepared_s) facts.push(`${seconds(item.prepared_s)} kept after trimming silence`);
  if (item.sample_rate) facts.push(`${(item.sample_rate / 1000).toLocaleString('en')} kHz`);
  if (item.channels) facts.push(item.channels === 1 ? 'mono' : item.channels === 2 ? 'stereo' : `${item.channels} channels`);
  return facts.join(' · ');
}

function problemList(errors = [], warnings = []) {
  if (!errors.length && !warnings.length) return null;
  return el('ul', { class: 'problems' },
    ...errors.map((text) => el('li', { class: 'error', text })),
    ...warnings.map((text) => el('li', { class: 'warning', text })));
}

// ---- language picker and settings boxes ------------------------------------------------------

// The first language matters (replies fall back to it), so it is chosen on its own.
function languagePicker(fieldset, prefix, onChange = () => {}) {
  const main = el('select', { id: `${prefix}-main` },
    ...state.studio.languages.map(({ code, name }) => el('option', { value: code, text: name })));
  const boxes = state.studio.languages.map(({ code, name }) => {
    const box = el('input', { type: 'checkbox', value: code });
    return { code, box, label: el('label', {}, box, name) };
  });
  const summary = el('summary');
  const more = el('details', {}, summary, el('div', { class: 'lang-grid' }, ...boxes.map((b) => b.label)));

  const sync = () => {
    for (const { code, box, label } of boxes) {
      label.hidden = code === main.value;
      if (label.hidden) box.checked = false;
    }
    const others = boxes.filter((b) => b.box.checked).map((b) => languageName(b.code));
    summary.textContent = others.length ? `Also speaks: ${others.join(', ')}` : 'Also speaks other languages…';
  };
  main.addEventListener('change', () => { sync(); onChange(); });
  for (const { box } of boxes) box.addEventListener('change', sync);

  fieldset.replaceChildren(
    el('legend', { text: 'Languages' }),
    el('label', { for: main.id, text: 'Main language' }),
    main,
    more,
  );
  return {
    get value() {
      return [main.value, ...boxes.filter((b) => b.box.checked).map((b) => b.code)];
    },
    set value(codes) {
      main.value = codes[0] ?? 'en';
      for (const { code, box } of boxes) box.checked = codes.slice(1).includes(code);
      more.open = codes.length > 1;
      sync();
    },
  };
}

function settingsBox(container, prefix) {
  const inputs = {};
  container.replaceChildren(...SETTINGS.map(([key, label, help]) => {
    const limits = state.studio.generation[key];
    const id = `${prefix}-${key}`;
    const input = el('input', {
      id,
      type: 'number',
      min: limits.min,
      max: limits.max,
      step: limits.integer ? 1 : limits.step ?? 'any',
      inputmode: limits.integer ? 'numeric' : 'decimal',
      placeholder: key === 'seed' ? 'random' : String(limits.default ?? ''),
      'aria-describedby': `${id}-hint`,
    });
    inputs[key] = input;
    return el('div', { class: 'field' },
      el('label', { for: id, text: label }),
      input,
      el('p', { class: 'hint', id: `${id}-hint`, text: key === 'seed' ? help : `${limits.min}–${limits.max}. ${help}` }));
  }));
  return {
    fill(synthesis = {}) {
      for (const [key, input] of Object.entries(inputs)) {
        input.value = synthesis[key] ?? '';
        input.classList.remove('invalid');
      }
    },
    // Values as numbers, or null for an empty box; throws a sentence for a bad value.
    read() {
      const values = {};
      for (const [key, label] of SETTINGS) {
        const input = inputs[key];
        const limits = state.studio.generation[key];
        const number = input.valueAsNumber;
        const wrong = input.validity.badInput || input.validity.rangeUnderflow
          || input.validity.rangeOverflow || (limits.integer && input.value !== '' && !Number.isInteger(number));
        input.classList.toggle('invalid', wrong);
        if (wrong) {
          input.focus();
          const kind = limits.integer ? 'a whole number' : 'a number';
          throw new Error(`${label} must be ${kind} from ${limits.min} to ${limits.max}.`);
        }
        values[key] = input.value === '' ? null : number;
      }
      return values;
    },
  };
}

// Only changed settings are sent: untouched ones keep following the server's defaults.
function changedSettings(values, saved = {}) {
  return Object.fromEntries(Object.entries(values).filter(([key, value]) => value !== (saved[key] ?? null)));
}

// ---- voice list ------------------------------------------------------------------------------

const profiles = () => state.voices.filter((voice) => !voice.builtin);
const findVoice = (name) => state.voices.find((voice) => voice.name === name);

async function refreshVoices() {
  const { voices } = await api('api/voices');
  state.voices = voices;
  renderVoices();
  for (const side of sides) side.refreshChoices();
}

function renderVoices() {
  const { writable } = state.studio;
  const own = profiles();
  $('#profiles').replaceChildren(...own.map((voice) => profileCard(voice, writable)));
  $('#no-profiles').hidden = own.length > 0;

  const builtins = state.voices.filter((voice) => voice.builtin);
  $('#builtins').hidden = builtins.length === 0;
  $('#builtin-count').textContent = builtins.length;
  $('#builtin-list').replaceChildren(...builtins.map((voice) => el('li', {},
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
  const clipProblems = new Set(voice.clips.flatMap((clip) => [...clip.errors, ...clip.warnings]));
  const ownErrors = voice.errors.filter((text) => !clipProblems.has(text));
  const ownWarnings = voice.warnings.filter((text) => !clipProblems.has(text));
  const heading = el('h3', { tabindex: '-1', text: voice.name });
  return el('li', {
    class: `card${voice.usable ? '' : ' broken'}${voice.default ? ' is-default' : ''}`,
    'data-voice': voice.name,
  },
  el('div', { class: 'card-title' },
    heading,
    voice.default && el('span', { class: 'badge default', text: 'Default voice' }),
    !voice.usable && el('span', { class: 'badge broken', text: 'Cannot be used' })),
  el('p', { class: voice.description ? 'description' : 'description muted', text: voice.description || 'No description.' }),
  el('p', { class: 'languages-line', text: `Speaks ${voice.languages.map(languageName).join(', ')}.` }),
  !voice.usable && el('p', { class: 'reason', text: 'Why it cannot be used:' }),
  problemList(ownErrors, ownWarnings),
  voice.clips.length > 0 && el('ul', { class: 'card-clips', 'aria-label': `Recordings of ${voice.name}` },
    ...voice.clips.map((clip) => el('li', {},
      el('span', { class: 'clip-name', text: clip.name }), ' ',
      el('span', { class: 'muted', text: audioFacts(clip) }), ' ',
      !clip.errors.length && !clip.warnings.length && el('span', { class: 'badge ok', text: 'Checked: good' }),
      problemList(clip.errors, clip.warnings)))),
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
      onclick: (event) => openEditor(voice.name, event.currentTarget),
    })));
}

function focusCard(name) {
  const card = [...document.querySelectorAll('#profiles .card')].find((node) => node.dataset.voice === name);
  (card ? $('h3', card) : $('#voices-heading')).focus();
}

// ---- new voice -------------------------------------------------------------------------------

let newLanguages;
let clipPlayer = null;

function setUpNewVoice() {
  const { limits, writable } = state.studio;
  newLanguages = languagePicker($('#nv-languages'), 'nv-languages', () => showSentence(0));
  newLanguages.value = ['en'];
  const [best, most] = limits.clip_best_s;
  $('#clips-hint').textContent = `Add up to ${limits.clips_per_voice} recordings of one person speaking: `
    + `${best}–${most} s each works best, at least ${limits.clip_min_s} s of speech. `
    + `Each is checked as soon as it is added; nothing is saved until you press “Save voice”.`;
  $('#record-max').textContent = `stops by itself at ${limits.record_max_s} s`;

  const open = $('#new-voice-open');
  open.disabled = !writable;
  open.addEventListener('click', () => toggleNewVoice($('#new-voice').hidden));
  $('#nv-cancel').addEventListener('click', () => toggleNewVoice(false));
  $('#nv-name').addEventListener('input', updateSaveState);
  $('#nv-file').addEventListener('change', (event) => {
    for (const file of event.target.files) addClip(file);
    event.target.value = ''; // the same file can be chosen again after removing it
  });
  $('#record-start').addEventListener('click', () => startRecording());
  $('#record-stop').addEventListener('click', () => stopRecording(false));
  $('#record-cancel').addEventListener('click', () => stopRecording(true));
  $('#record-next').addEventListener('click', () => showSentence(1));
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
  const pending = state.clips.filter((clip) => clip.status === 'pending').length;
  const good = state.clips.filter((clip) => clip.status === 'ok').length;
  const name = $('#nv-name').value.trim();
  let reason = '';
  if (!name) reason = 'Give the voice a name.';
  else if (pending) reason = 'Wait until every recording is checked.';
  else if (!good) reason = 'Add at least one usable recording.';
  else if (good < state.clips.length) reason = 'Recordings that cannot be used are left out.';
  $('#nv-save').disabled = !state.studio.writable || Boolean(!name || pending || !good);
  $('#save-hint').textContent = reason;
  const full = state.clips.length >= state.studio.limits.clips_per_voice;
  $('#nv-file').disabled = full;
  $('#record-start').disabled = full || Boolean(recorder);
}

async function addClip(file) {
  // A counter, not crypto.randomUUID(): that only exists on https, and many open the studio
  // over plain http on the home network.
  state.clipCount += 1;
  const clip = { key: String(state.clipCount), name: file.name, status: 'pending', upload: null, problem: null };
  state.clips.push(clip);
  const limit = state.studio.limits.upload_bytes;
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
  const old = $(`#clips [data-key="${clip.key}"]`);
  if (old) old.replaceWith(fresh);
  else $('#clips').append(fresh);
  updateSaveState();
}

function dropClip(clip) {
  state.clips = state.clips.filter((other) => other !== clip);
  $(`#clips [data-key="${clip.key}"]`)?.remove();
  updateSaveState();
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
  const playing = clipPlayer && !clipPlayer.paused && clipPlayer.clipKey === clip.key;
  pauseAllBut(null);
  if (playing) return undefined;
  const url = `api/uploads/${encodeURIComponent(clip.upload.id)}/audio`;
  const player = new Audio(url);
  player.clipKey = clip.key;
  clipPlayer = player;
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
    $('#nv-file').focus();
    return;
  }
  await busy(button, async () => {
    if (clip.upload) await api(`api/uploads/${encodeURIComponent(clip.upload.id)}`, { method: 'DELETE' });
    if (clipPlayer?.clipKey === clip.key) clipPlayer.pause();
    dropClip(clip);
    $('#nv-file').focus();
  });
}

function forgetUpload(clip) {
  if (clip.upload) api(`api/uploads/${encodeURIComponent(clip.upload.id)}`, { method: 'DELETE' }).catch(() => {});
}

async function saveNewVoice(button) {
  if ($('#nv-save').disabled) return;
  const name = $('#nv-name').value.trim();
  const saved = await busy(button, () => api('api/voices', {
    method: 'POST',
    json: {
      name,
      description: $('#nv-description').value.trim(),
      languages: newLanguages.value,
      uploads: state.clips.filter((clip) => clip.status === 'ok').map((clip) => clip.upload.id),
      denoise: $('#nv-denoise').checked,
      replace: false,
    },
  }));
  if (!saved) return;
  // Unusable recordings were not part of the voice; tidy them away on the server.
  for (const clip of state.clips) if (clip.status !== 'ok') forgetUpload(clip);
  state.clips = [];
  $('#clips').replaceChildren();
  $('#new-voice-form').reset();
  newLanguages.value = ['en'];
  updateSaveState();
  $('#new-voice').hidden = true;
  $('#new-voice-open').setAttribute('aria-expanded', 'false');
  say(`The voice “${saved.name}” is saved; Home Assistant can use it now.`);
  try {
    await refreshVoices();
  } catch (error) {
    say(error.message, 'error');
  }
  focusCard(saved.name);
}

// ---- recording in the browser ----------------------------------------------------------------

let recorder = null;
let sentenceIndex = 0;

function showSentence(step) {
  const language = newLanguages.value[0];
  const list = state.studio.sentences[language] ?? state.studio.sentences.en ?? [];
  sentenceIndex = list.length ? (sentenceIndex + step) % list.length : 0;
  const quote = $('#record-sentence');
  quote.textContent = list[sentenceIndex] ?? 'Talk about your day for half a minute.';
  quote.lang = state.studio.sentences[language] ? language : 'en';
  $('#record-next').hidden = list.length < 2;
}

function recorderType() {
  const wanted = ['audio/webm;codecs=opus', 'audio/ogg;codecs=opus', 'audio/mp4', 'audio/webm'];
  return wanted.find((type) => MediaRecorder.isTypeSupported(type)) ?? '';
}

function extensionFor(mimeType) {
  if (mimeType.includes('ogg')) return 'ogg';
  if (mimeType.includes('mp4') || mimeType.includes('aac')) return 'm4a';
  return 'webm';
}

async function startRecording() {
  if (!navigator.mediaDevices?.getUserMedia || typeof MediaRecorder === 'undefined') {
    say('This browser cannot record here: recording needs HTTPS (or localhost) and a recent browser. '
      + 'Record with another app and add the file instead.', 'error');
    return;
  }
  const button = $('#record-start');
  await busy(button, async () => {
    let stream;
    try {
      // No echo cancellation or noise suppression: they colour the voice that is being cloned.
      stream = await navigator.mediaDevices.getUserMedia({
        audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: true },
      });
    } catch (error) {
      throw new Error(error.name === 'NotAllowedError'
        ? 'The microphone is blocked: allow it for this page in the browser’s site settings, then try again.'
        : `The microphone cannot be opened (${error.message || error.name}).`);
    }
    const media = new MediaRecorder(stream, { mimeType: recorderType() });
    const context = new AudioContext();
    context.resume(); // Safari starts it suspended once the click's user gesture has passed
    const analyser = context.createAnalyser();
    analyser.fftSize = 2048;
    context.createMediaStreamSource(stream).connect(analyser);
    const chunks = [];
    const session = { stream, media, context, analyser, chunks, started: performance.now(), cancelled: false };
    recorder = session;
    media.addEventListener('dataavailable', (event) => { if (event.data.size) chunks.push(event.data); });
    media.addEventListener('stop', () => finishRecording(session));
    media.start(1000);
    session.timer = setInterval(tickRecording, 100);
    showSentence(0);
    $('#record-time').textContent = '0:00';
    $('#recorder').hidden = false;
    $('#record-stop').focus();
    updateSaveState();
  });
}

function tickRecording() {
  if (!recorder) return;
  const elapsed = (performance.now() - recorder.started) / 1000;
  const whole = Math.floor(elapsed);
  $('#record-time').textContent = `${Math.floor(whole / 60)}:${String(whole % 60).padStart(2, '0')}`;
  const samples = new Float32Array(recorder.analyser.fftSize);
  recorder.analyser.getFloatTimeDomainData(samples);
  const rms = Math.sqrt(samples.reduce((sum, x) => sum + x * x, 0) / samples.length);
  // -60 dBFS (silence) to 0 dBFS (full scale) across the meter.
  $('#record-level').value = Math.max(0, Math.min(1, (20 * Math.log10(rms || 1e-9) + 60) / 60));
  if (elapsed >= state.studio.limits.record_max_s) {
    stopRecording(false);
    say(`Recording stopped after ${state.studio.limits.record_max_s} s, the longest a clip needs.`);
  }
}

function stopRecording(cancel) {
  if (!recorder || recorder.media.state === 'inactive') return;
  recorder.cancelled = cancel;
  clearInterval(recorder.timer);
  recorder.media.stop();
}

function finishRecording(done) {
  done.stream.getTracks().forEach((track) => track.stop());
  done.context.close();
  recorder = null;
  $('#recorder').hidden = true;
  $('#record-level').value = 0;
  updateSaveState();
  $('#record-start').focus();
  if (done.cancelled || !done.chunks.length) return;
  const type = done.media.mimeType || done.chunks[0].type;
  state.recordings += 1;
  const file = new File(done.chunks, `recording-${state.recordings}.${extensionFor(type)}`, { type });
  addClip(file);
}

// ---- listen and compare ------------------------------------------------------------------------

const sides = [];

// Plays `audio` and settles when sound starts; on failure the server's sentence is fetched
// from the same URL, because a media element only reports that something went wrong.
function playAudio(audio, url) {
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
    return 'The server cannot be reached; check that it is running, then try again.';
  }
}

function makeSide(letter) {
  const node = $('#side-template').content.firstElementChild.cloneNode(true);
  const prefix = `side-${letter.toLowerCase()}`;
  node.id = prefix;
  $('.side-name', node).textContent = letter;
  const select = $('.voice-select', node);
  select.id = `${prefix}-voice`;
  $('.voice-label', node).htmlFor = select.id;
  const settings = settingsBox($('.settings', node), prefix);
  const play = $('.play', node);
  const store = $('.store', node);
  const audio = $('.player', node);
  play.textContent = `Play ${letter}`;
  audio.setAttribute('aria-label', `Side ${letter} audio`);

  const side = {
    letter,
    get voice() { return findVoice(select.value); },
    choose(name) {
      select.value = name;
      this.prefill();
    },
    prefill() {
      const voice = this.voice;
      settings.fill(voice?.synthesis);
      const editable = voice && !voice.builtin && state.studio.writable;
      store.disabled = !editable;
      store.textContent = voice && !voice.builtin ? `Save these settings to ${voice.name}` : 'Save these settings';
      store.title = voice?.builtin ? 'Built-in speakers keep their settings.' : '';
    },
    refreshChoices() {
      const previous = select.value;
      const own = profiles();
      const builtins = state.voices.filter((voice) => voice.builtin);
      select.replaceChildren(
        own.length && el('optgroup', { label: 'Your voices' }, ...own.map((voice) => el('option', {
          value: voice.name,
          disabled: !voice.usable,
          text: voice.usable ? voice.name : `${voice.name} (cannot be used)`,
        }))),
        builtins.length && el('optgroup', { label: 'Built-in speakers' },
          ...builtins.map((voice) => el('option', { value: voice.name, text: voice.name }))),
      );
      // A voice removed behind the page's back stays chosen: playing it explains what happened.
      if (previous && !findVoice(previous)) select.prepend(el('option', { value: previous, text: previous }));
      const fallback = state.voices.find((voice) => voice.default && voice.usable)
        ?? state.voices.find((voice) => voice.usable);
      select.value = previous || fallback?.name || '';
      if (!previous) this.prefill();
    },
    url() {
      const values = settings.read();
      const query = new URLSearchParams({ voice: select.value, text: $('#sentence').value, format: 'mp3' });
      for (const [key, value] of Object.entries(values)) if (value !== null) query.set(key, value);
      return `api/speech?${query}`;
    },
  };
  select.addEventListener('change', () => side.prefill());
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
    const saved = await api(`api/voices/${encodeURIComponent(voice.name)}`, {
      method: 'PATCH',
      json: { synthesis },
    });
    replaceVoice(saved);
    for (const other of sides) if (other !== side && other.voice?.name === voice.name) other.prefill();
    say(`The settings of side ${letter} are saved to “${voice.name}”.`);
  }));
  $('.sides').append(node);
  return side;
}

function pauseAllBut(playing) {
  for (const other of document.querySelectorAll('.player')) if (other !== playing) other.pause();
  if (clipPlayer !== playing) clipPlayer?.pause();
}

function listenTo(name) {
  const side = sides[0];
  side.choose(name);
  $('#listen').scrollIntoView({ block: 'start' });
  $('.play', $('#side-a')).focus();
}

function setUpListen() {
  const { limits } = state.studio;
  const text = $('#sentence');
  text.maxLength = limits.text_chars;
  const count = () => { $('#sentence-count').textContent = `${text.value.length} of ${limits.text_chars} characters`; };
  text.addEventListener('input', count);
  count();
  sides.push(makeSide('A'), makeSide('B'));
}

function replaceVoice(saved) {
  state.voices = state.voices.map((voice) => (voice.name === saved.name ? saved : voice));
  renderVoices();
}

// ---- editing a profile -------------------------------------------------------------------------

let editing = null;
let editLanguages;
let editSettings;

function setUpEditor() {
  const dialog = $('#edit-dialog');
  editLanguages = languagePicker($('#ed-languages'), 'ed-languages');
  editSettings = settingsBox($('#ed-settings'), 'ed');
  $('#edit-form').addEventListener('submit', (event) => {
    event.preventDefault();
    saveEdit($('#ed-save'));
  });
  $('#ed-close').addEventListener('click', () => dialog.close());
  $('#ed-default').addEventListener('click', (event) => makeDefault(event.currentTarget));
  $('#ed-remove').addEventListener('click', () => openConfirm());
  dialog.addEventListener('close', () => {
    const name = editing?.name;
    editing = null;
    if (name) focusEditButton(name);
  });
  $('#confirm-cancel').addEventListener('click', () => $('#confirm-dialog').close());
  $('#confirm-remove').addEventListener('click', (event) => removeVoice(event.currentTarget));
}

function focusEditButton(name) {
  const card = [...document.querySelectorAll('#profiles .card')].find((node) => node.dataset.voice === name);
  (card ? $('.edit', card) : $('#voices-heading')).focus();
}

function openEditor(name) {
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
    return unchanged ? findVoice(name) : api(`api/voices/${encodeURIComponent(name)}`, { method: 'PATCH', json });
  });
  if (!saved) return;
  if (unchanged) {
    dialog.close();
    say(`Nothing to save: “${name}” is as it was.`);
    return;
  }
  replaceVoice(saved);
  for (const side of sides) if (side.voice?.name === name) side.prefill();
  dialog.close();
  say(`The changes to “${name}” are saved.`);
}

async function makeDefault(button) {
  const { name } = editing;
  const done = await busy(button, () => api('api/default-voice', { method: 'PUT', json: { voice: name } }));
  if (!done) return;
  state.studio.default_voice = done.default_voice;
  state.voices = state.voices.map((voice) => ({ ...voice, default: voice.name === done.default_voice }));
  renderVoices();
  showDefaultState(findVoice(name));
  say(`“${name}” is now the default voice.`);
}

function openConfirm() {
  const dialog = $('#confirm-dialog');
  clearDialogMessage(dialog);
  $('#confirm-heading').textContent = `Remove “${editing.name}”?`;
  $('#confirm-text').textContent = 'Its recordings are deleted from the server and Home Assistant '
    + 'can no longer speak with this voice. This cannot be undone.';
  dialog.showModal();
  $('#confirm-cancel').focus();
}

async function removeVoice(button) {
  const { name } = editing;
  const done = await busy(button, async () => {
    await api(`api/voices/${encodeURIComponent(name)}`, { method: 'DELETE' });
    return true;
  });
  if (!done) return;
  $('#confirm-dialog').close();
  editing = null; // nothing to return focus to: the card is gone
  $('#edit-dialog').close();
  say(`The voice “${name}” is removed.`);
  try {
    await refreshVoices();
  } catch (error) {
    say(error.message, 'error');
  }
  $('#voices-heading').setAttribute('tabindex', '-1');
  $('#voices-heading').focus();
}

// ---- start -------------------------------------------------------------------------------------

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
    setUpNewVoice();
    setUpListen();
    setUpEditor();
    await refreshVoices();
    setUpListenText();
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

// The suggested sentence is in the default voice's language, known once voices are loaded.
function setUpListenText() {
  const { sentences, limits } = state.studio;
  const language = state.voices.find((voice) => voice.default)?.languages[0] ?? 'en';
  const suggestion = (sentences[language] ?? sentences.en ?? [])[0] ?? 'Hello! This is how I sound.';
  const text = $('#sentence');
  text.value = suggestion.slice(0, limits.text_chars);
  text.dispatchEvent(new Event('input'));
}

start();
