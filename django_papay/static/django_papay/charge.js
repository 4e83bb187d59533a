/* The charge page's sub-orders: "Add a sub-order" adds a row (up to WeChat Pay's 50), and the total per
   contract follows the amounts as they are typed (in fen, as integers: no float rounding). */
(function () {
  "use strict";
  var table = document.querySelector(".papay-sub-orders");
  if (!table) { return; }
  var prefix = table.dataset.prefix;
  var max = parseInt(table.dataset.max, 10);
  var totalForms = document.getElementById("id_" + prefix + "-TOTAL_FORMS");
  var body = table.querySelector("tbody");
  var template = document.getElementById("papay-sub-order-template");
  var add = table.querySelector(".papay-add-sub-order");
  var shown = document.getElementById("papay-total");
  var YUAN = /^\s*([0-9]+)(?:\.([0-9]{1,2}))?\s*$/;

  function rows() { return parseInt(totalForms.value, 10); }

  function yuan(fen) {
    var cents = String(fen % 100);
    return "\u00a5" + Math.floor(fen / 100).toLocaleString("en-US") + "." + (cents.length < 2 ? "0" + cents : cents);
  }

  function refresh() {
    var fen = 0;
    var any = false;
    body.querySelectorAll('input[name$="-amount"]').forEach(function (input) {
      var match = YUAN.exec(input.value);
      if (match) {
        any = true;
        fen += parseInt(match[1], 10) * 100 + parseInt(((match[2] || "") + "00").slice(0, 2), 10);
      }
    });
    shown.textContent = any ? yuan(fen) : "-";
    add.disabled = rows() >= max;
  }

  add.addEventListener("click", function () {
    if (rows() >= max) { return; }
    body.insertAdjacentHTML("beforeend", template.innerHTML.replace(/__prefix__/g, String(rows())));
    totalForms.value = rows() + 1;
    refresh();
  });
  body.addEventListener("input", refresh);
  refresh();
})();
