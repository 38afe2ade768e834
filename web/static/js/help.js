// The help center: "Was this helpful?" answered without leaving the article. Without
// JavaScript (or when this fails) the form posts and the page reloads with the same result.
(function () {
  "use strict";
  const form = document.getElementById("vote-form");
  if (!form) return;
  const status = document.getElementById("vote-status");
  const tally = document.getElementById("vote-tally");
  const buttons = Array.from(form.querySelectorAll('button[name="helpful"]'));
  const THANKS = {
    yes: "You answered Yes. Thank you!",
    no: "You answered No. Thank you: we will work on this article.",
  };

  function tallyText(helpful, notHelpful) {
    const total = helpful + notHelpful;
    if (!total) return "Nobody has answered yet.";
    return helpful + " of " + total + (total === 1 ? " reader" : " readers") + " found this helpful.";
  }

  function show(mine) {
    buttons.forEach((button) => {
      const pressed = button.value === mine;
      button.setAttribute("aria-pressed", pressed ? "true" : "false");
      button.classList.toggle("outline", !pressed);
    });
  }

  function say(text, isError) {
    status.textContent = text;
    status.classList.toggle("vote-error", isError);
  }

  let sending = false;
  form.addEventListener("submit", async (event) => {
    const answer = event.submitter && event.submitter.value;
    if (!answer) return;  // let the browser post it
    event.preventDefault();
    if (sending) return;
    sending = true;
    buttons.forEach((button) => { button.disabled = true; });
    const data = new FormData(form);
    data.set("helpful", answer);
    try {
      const response = await fetch(form.action, {
        method: "POST",
        body: data,
        headers: { Accept: "application/json" },
        credentials: "same-origin",
      });
      const body = await response.json().catch(() => null);
      if (response.ok && body) {
        show(body.mine ? "yes" : "no");
        say(THANKS[body.mine ? "yes" : "no"], false);
        tally.textContent = tallyText(body.helpful_count, body.not_helpful_count);
      } else {
        say((body && body.error) || "Your answer was not saved; please try again.", true);
      }
    } catch (e) {
      say("You seem to be offline; your answer was not saved. Please try again.", true);
    } finally {
      sending = false;
      buttons.forEach((button) => { button.disabled = false; });
    }
  });
})();
