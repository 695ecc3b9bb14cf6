/* Chat widget for the retrieval chatbot. No build step, no dependencies.
 *
 * <script src="https://HOST/static/widget.js" data-endpoint="https://HOST/respond" defer></script>
 *
 * data-endpoint  URL of POST /respond (default: /respond on the host that served this file);
 *                votes go to POST /feedback beside it
 * data-target    CSS selector of an element to fill; without it a floating chat box is added
 * data-k         how many responses to ask for: the best plus runners-up (default 5)
 * data-title     header text (default "Chatbot")
 */
(() => {
  "use strict";

  const script = document.currentScript;
  const endpoint = script.dataset.endpoint || new URL("/respond", script.src).href;
  const options = {
    endpoint,
    feedback: new URL("/feedback", endpoint).href,
    target: script.dataset.target || "",
    k: Number(script.dataset.k || 5),
    title: script.dataset.title || "Chatbot",
  };
  // Replies the service is less sure of than this are marked as such.
  const UNSURE_BELOW = 0.5;

  // The server keeps the conversation under this id: each request sends the new message only.
  function newSessionId() {
    const bytes = crypto.getRandomValues(new Uint8Array(16)); // randomUUID needs HTTPS
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  // Every piece of text goes through textContent: responses are data, never markup.
  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function addStylesheet() {
    const href = new URL("widget.css", script.src).href;
    if ([...document.styleSheets].some((sheet) => sheet.href === href)) return;
    const link = el("link");
    link.rel = "stylesheet";
    link.href = href;
    document.head.append(link);
  }

  function buildChat(onClose) {
    const panel = el("section", "cbw-panel");
    panel.setAttribute("aria-label", options.title);

    const header = el("header", "cbw-header");
    const reset = el("button", "cbw-reset", "New chat");
    reset.type = "button";
    header.append(el("span", "cbw-title", options.title), reset);
    if (onClose) {
      const close = el("button", "cbw-close", "×");
      close.type = "button";
      close.setAttribute("aria-label", "Close chat");
      close.addEventListener("click", onClose);
      header.append(close);
    }

    const log = el("ol", "cbw-log");
    log.setAttribute("aria-live", "polite");
    const form = el("form", "cbw-form");
    const input = el("input", "cbw-input");
    input.placeholder = "Type a message…";
    input.autocomplete = "off";
    input.setAttribute("aria-label", "Message");
    const send = el("button", "cbw-send", "Send");
    send.type = "submit";
    form.append(input, send);
    panel.append(header, log, form);

    let sessionId = newSessionId();
    const say = (who, text) => {
      const item = el("li", `cbw-msg cbw-${who}`);
      item.append(el("p", "cbw-text", text));
      log.append(item);
      log.scrollTop = log.scrollHeight;
      return item;
    };

    reset.addEventListener("click", () => {
      sessionId = newSessionId();
      log.replaceChildren();
      input.focus();
    });

    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const text = input.value.trim();
      if (!text) return;
      input.value = "";
      send.disabled = true;
      say("user", text);
      const pending = say("bot", "…");
      pending.classList.add("cbw-pending");
      try {
        const answer = await ask(text, sessionId);
        pending.replaceWith(renderAnswer(answer));
      } catch (error) {
        // An unanswered message never reached the session: nothing to take back.
        pending.replaceWith(el("li", "cbw-msg cbw-error", error.message));
      } finally {
        send.disabled = false;
        log.scrollTop = log.scrollHeight;
        input.focus();
      }
    });
    return { panel, input };
  }

  async function post(url, payload) {
    let response;
    try {
      response = await fetch(url, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(payload),
      });
    } catch {
      throw new Error("Cannot reach the chatbot. Is the service running?");
    }
    const body = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(`Sorry: ${body.detail || response.statusText}`);
    return body;
  }

  async function ask(message, sessionId) {
    const body = await post(options.endpoint, {
      context: [message],
      k: options.k,
      session_id: sessionId,
    });
    if (!body.responses || body.responses.length === 0) throw new Error("No answer found.");
    return body;
  }

  function percent(confidence) {
    return `${Math.round(confidence * 100)}%`;
  }

  // Votes up and down on a reply; the vote is stored once, however often it is clicked.
  function voteButtons(answer) {
    const bar = el("div", "cbw-votes");
    const status = el("span", "cbw-vote-status");
    const buttons = [
      ["up", "Helpful", "This answer helped"],
      ["down", "Not helpful", "This answer did not help"],
    ].map(([vote, text, label]) => {
      const button = el("button", `cbw-vote cbw-vote-${vote}`, text);
      button.type = "button";
      button.setAttribute("aria-label", label);
      button.setAttribute("aria-pressed", "false");
      button.addEventListener("click", async () => {
        buttons.forEach((b) => (b.disabled = true));
        status.textContent = "";
        try {
          await post(options.feedback, { request_id: answer.request_id, vote });
          button.setAttribute("aria-pressed", "true");
          status.textContent = "Thanks!";
        } catch (error) {
          buttons.forEach((b) => (b.disabled = false));
          status.textContent = error.message;
        }
      });
      return button;
    });
    bar.append(...buttons, status);
    return bar;
  }

  function renderAnswer(answer) {
    const [best, ...others] = answer.responses;
    const unsure = answer.abstained || answer.confidence < UNSURE_BELOW;
    const item = el("li", unsure ? "cbw-msg cbw-bot cbw-unsure" : "cbw-msg cbw-bot");
    item.dataset.requestId = answer.request_id;
    item.append(el("p", "cbw-text", answer.reply));
    if (unsure) {
      const why = answer.abstained ? "Not sure enough to answer" : "Not sure";
      item.append(el("p", "cbw-confidence", `${why} · confidence ${percent(answer.confidence)}`));
    }
    item.title =
      `confidence ${percent(answer.confidence)} · score ${best.score.toFixed(2)} · ` +
      `${answer.model} · ${Math.round(answer.took_ms)} ms`;
    item.append(voteButtons(answer));
    if (answer.abstained || others.length > 0) {
      const more = el("details", "cbw-more");
      const label = answer.abstained ? "Best guesses" : "Runners-up";
      more.append(el("summary", "", `${label} (${answer.abstained ? others.length + 1 : others.length})`));
      const list = el("ol", "cbw-alts");
      for (const hit of [best, ...others]) {
        const row = el("li", hit === best ? "cbw-alt cbw-alt-best" : "cbw-alt");
        row.append(el("span", "cbw-alt-text", hit.text), el("span", "cbw-score", hit.score.toFixed(2)));
        list.append(row);
      }
      more.append(list);
      item.append(more);
    }
    return item;
  }

  function mountInline(host) {
    const root = el("div", "cbw cbw-inline");
    root.append(buildChat(null).panel);
    host.append(root);
  }

  function mountFloating() {
    const root = el("div", "cbw cbw-floating");
    const launcher = el("button", "cbw-launcher", "Chat");
    launcher.type = "button";
    launcher.setAttribute("aria-expanded", "false");
    const toggle = (open) => {
      root.classList.toggle("cbw-open", open);
      launcher.setAttribute("aria-expanded", String(open));
      if (open) chat.input.focus();
    };
    const chat = buildChat(() => toggle(false));
    launcher.addEventListener("click", () => toggle(!root.classList.contains("cbw-open")));
    root.append(chat.panel, launcher);
    document.body.append(root);
  }

  function mount() {
    addStylesheet();
    const host = options.target && document.querySelector(options.target);
    if (host) mountInline(host);
    else mountFloating();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", mount);
  else mount();
})();
