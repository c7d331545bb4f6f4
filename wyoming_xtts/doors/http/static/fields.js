// Form pieces used in more than one place: the language picker, the speaking-settings boxes,
// and the wording of clip facts and problems.

import { el } from './api.js';
import { state } from './state.js';

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

const seconds = (value) => `${Number(value ?? 0).toFixed(1)} s`;

export function languageName(code) {
  return state.studio.languages.find((language) => language.code === code)?.name ?? code;
}

export function audioFacts(item) {
  const facts = [];
  if (item.duration_s) facts.push(`${seconds(item.duration_s)} long`);
  if (item.speech_s !== undefined && item.duration_s) facts.push(`${seconds(item.speech_s)} of speech`);
  if (item.prepared_s) facts.push(`${seconds(item.prepared_s)} kept after trimming silence`);
  if (item.sample_rate) facts.push(`${(item.sample_rate / 1000).toLocaleString('en')} kHz`);
  if (item.channels) facts.push(item.channels === 1 ? 'mono' : item.channels === 2 ? 'stereo' : `${item.channels} channels`);
  return facts.join(' · ');
}

export function problemList(errors = [], warnings = []) {
  if (!errors.length && !warnings.length) return null;
  return el('ul', { class: 'problems' },
    ...errors.map((text) => el('li', { class: 'error', text })),
    ...warnings.map((text) => el('li', { class: 'warning', text })));
}

// A saved voice's or style's clips, each with its checks, as on `voice check`.
export function savedClipList(clips, label) {
  if (!clips.length) return null;
  return el('ul', { class: 'card-clips', 'aria-label': label },
    ...clips.map((clip) => el('li', {},
      el('span', { class: 'clip-name', text: clip.name }), ' ',
      el('span', { class: 'muted', text: audioFacts(clip) }), ' ',
      !clip.errors.length && !clip.warnings.length && el('span', { class: 'badge ok', text: 'Checked: good' }),
      problemList(clip.errors, clip.warnings))));
}

// The first language matters (replies fall back to it), so it is chosen on its own.
export function languagePicker(fieldset, prefix, onChange = () => {}) {
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

export function settingsBox(container, prefix) {
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
export function changedSettings(values, saved = {}) {
  return Object.fromEntries(Object.entries(values).filter(([key, value]) => value !== (saved[key] ?? null)));
}
