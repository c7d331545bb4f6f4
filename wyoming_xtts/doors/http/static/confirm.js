// The one confirmation every removal goes through (a voice, a style). Cancel has focus when it
// opens, so a hurried Enter never deletes anything.

import { $, busy, clearDialogMessage } from './api.js';

let pending = null; // {remove, done, back}

export function setUpConfirm() {
  const dialog = $('#confirm-dialog');
  $('#confirm-cancel').addEventListener('click', () => dialog.close());
  $('#confirm-remove').addEventListener('click', (event) => confirmed(event.currentTarget));
  // Cancelled (button or Escape): back to what opened it, if it is still on the page.
  dialog.addEventListener('close', () => {
    const back = pending?.back;
    pending = null;
    if (back?.isConnected) back.focus();
  });
}

// `remove()` does it (its failure is shown in the dialog, which stays open); `done()` runs
// once the dialog is closed; `back` is focused again if the person changes their mind.
export function confirmRemoval({ heading, text, remove, done, back }) {
  const dialog = $('#confirm-dialog');
  clearDialogMessage(dialog);
  $('#confirm-heading').textContent = heading;
  $('#confirm-text').textContent = text;
  pending = { remove, done, back };
  dialog.showModal();
  $('#confirm-cancel').focus();
}

async function confirmed(button) {
  const current = pending;
  if (!current) return;
  const removed = await busy(button, async () => {
    await current.remove();
    return true;
  });
  if (!removed) return;
  pending = null; // nothing to go back to: what opened the dialog is gone
  $('#confirm-dialog').close();
  await current.done();
}
