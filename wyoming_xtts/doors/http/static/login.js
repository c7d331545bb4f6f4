// The server sends a failed sign-in back to `./?failed=1`; the CSP allows no inline script.
if (new URLSearchParams(window.location.search).has('failed')) {
  document.getElementById('failed').hidden = false;
}
