/* The search box: Pagefind's interface and index, served by this site (no request leaves it).
   This is the site's only script; without JavaScript the box is not shown and all else works. */
(function () {
  "use strict";
  var script = document.currentScript;
  var holder = document.querySelector("[data-search]");
  if (!script || !holder || !window.URL) {
    return;
  }
  var bundle = new URL("pagefind/", script.src);
  var root = new URL("./", script.src);
  var style = document.createElement("link");
  style.rel = "stylesheet";
  style.href = new URL("pagefind-ui.css", bundle).href;
  var ui = document.createElement("script");
  ui.src = new URL("pagefind-ui.js", bundle).href;
  ui.onload = function () {
    holder.hidden = false;
    new window.PagefindUI({
      element: holder,
      bundlePath: bundle.pathname,
      baseUrl: root.pathname,
      showImages: false,
      showSubResults: false,
      resetStyles: false
    });
    // Pagefind names its box only by a title; give it a label of the page's language.
    var input = holder.querySelector("input");
    if (input) {
      input.setAttribute("aria-label", holder.getAttribute("data-label") || "Search");
    }
  };
  document.head.appendChild(style);
  document.head.appendChild(ui);
})();
