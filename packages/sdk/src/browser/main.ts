import { boot } from './loader';

// The bundle's entry: runs once where d.js is loaded. `currentScript` is only set while a classic script runs
// for the first time, which is now.
boot(window, document.currentScript instanceof HTMLScriptElement ? document.currentScript : null);
