// Recording in the browser. One microphone, so one recording at a time for the whole page,
// whichever form (new voice, new style) started it.

import { busy, say } from './api.js';
import { state } from './state.js';

let session = null;
let recordings = 0; // numbers the files: recording-1, recording-2… across the page

export const recording = () => session !== null;

function recorderType() {
  const wanted = ['audio/webm;codecs=opus', 'audio/ogg;codecs=opus', 'audio/mp4', 'audio/webm'];
  return wanted.find((type) => MediaRecorder.isTypeSupported(type)) ?? '';
}

function extensionFor(mimeType) {
  if (mimeType.includes('ogg')) return 'ogg';
  if (mimeType.includes('mp4') || mimeType.includes('aac')) return 'm4a';
  return 'webm';
}

// `parts` are the form's recorder elements (start, recorder, time, level, stop); `onFile`
// gets the finished recording; `onChange` is told when recording starts and ends.
export async function startRecording(parts, onFile, onChange) {
  if (!navigator.mediaDevices?.getUserMedia || typeof MediaRecorder === 'undefined') {
    say('This browser cannot record here: recording needs HTTPS (or localhost) and a recent browser. '
      + 'Record with another app and add the file instead.', 'error');
    return;
  }
  if (session) {
    say('A recording is already under way: stop it first.', 'error');
    return;
  }
  await busy(parts.start, async () => {
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
    const current = {
      parts, onFile, onChange, stream, media, context, analyser, chunks, started: performance.now(), cancelled: false,
    };
    session = current;
    media.addEventListener('dataavailable', (event) => { if (event.data.size) chunks.push(event.data); });
    media.addEventListener('stop', () => finishRecording(current));
    media.start(1000);
    current.timer = setInterval(tickRecording, 100);
    parts.time.textContent = '0:00';
    parts.recorder.hidden = false;
    parts.stop.focus();
    onChange();
  });
}

function tickRecording() {
  if (!session) return;
  const { parts } = session;
  const elapsed = (performance.now() - session.started) / 1000;
  const whole = Math.floor(elapsed);
  parts.time.textContent = `${Math.floor(whole / 60)}:${String(whole % 60).padStart(2, '0')}`;
  const samples = new Float32Array(session.analyser.fftSize);
  session.analyser.getFloatTimeDomainData(samples);
  const rms = Math.sqrt(samples.reduce((sum, x) => sum + x * x, 0) / samples.length);
  // -60 dBFS (silence) to 0 dBFS (full scale) across the meter.
  parts.level.value = Math.max(0, Math.min(1, (20 * Math.log10(rms || 1e-9) + 60) / 60));
  if (elapsed >= state.studio.limits.record_max_s) {
    stopRecording(false);
    say(`Recording stopped after ${state.studio.limits.record_max_s} s, the longest a clip needs.`);
  }
}

export function stopRecording(cancel) {
  if (!session || session.media.state === 'inactive') return;
  session.cancelled = cancel;
  clearInterval(session.timer);
  session.media.stop();
}

function finishRecording(done) {
  done.stream.getTracks().forEach((track) => track.stop());
  done.context.close();
  session = null;
  const { parts } = done;
  parts.recorder.hidden = true;
  parts.level.value = 0;
  done.onChange();
  parts.start.focus();
  if (done.cancelled || !done.chunks.length) return;
  const type = done.media.mimeType || done.chunks[0].type;
  recordings += 1;
  done.onFile(new File(done.chunks, `recording-${recordings}.${extensionFor(type)}`, { type }));
}
