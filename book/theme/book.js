// After the page loads: count figures that did not load and say so at the top
// (the chapter has not been run, or the book was built before it), and record
// what loaded on <body> (data-images-total/-broken, data-math-elements, data-math-fonts =
// the number of KaTeX font faces that loaded) for the
// project's headless-browser check.
(function () {
  function report() {
    var imgs = Array.prototype.slice.call(document.images);
    var broken = imgs.filter(function (img) { return !img.complete || img.naturalWidth === 0; });
    document.body.dataset.imagesTotal = String(imgs.length);
    document.body.dataset.imagesBroken = String(broken.length);
    if (broken.length > 0) {
      var box = document.getElementById("missing-figures");
      box.textContent = broken.length + " figure(s) did not load (" +
        broken.map(function (img) { return img.getAttribute("src"); }).join(", ") +
        "). Run the chapters (bash tools/tutorial.sh), which rebuilds the book.";
      box.hidden = false;
    }
    var math = document.querySelectorAll(".katex").length;
    document.body.dataset.mathElements = String(math);
    if (document.fonts && math > 0) {
      document.fonts.ready.then(function () {
        var loaded = 0;
        document.fonts.forEach(function (face) {
          if (face.family.replace(/"/g, "").indexOf("KaTeX") === 0 && face.status === "loaded") loaded++;
        });
        document.body.dataset.mathFonts = String(loaded);
      });
    }
  }
  if (document.readyState === "complete") report(); else window.addEventListener("load", report);
})();
