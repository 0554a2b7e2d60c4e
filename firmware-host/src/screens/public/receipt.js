// The return receipt's print button (a script file, because the page's CSP allows no inline script).
'use strict';
document.getElementById('print').addEventListener('click', () => window.print());
