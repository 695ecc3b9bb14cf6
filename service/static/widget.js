/* Chat widget for the retrieval chatbot. No build step, no dependencies.
 *
 * <script src="https://HOST/static/widget.js" data-endpoint="https://HOST/respond" defer></script>
 *
 * data-endpoint  URL of POST /respond (default: /respond on the host that served this file)
 * data-target    CSS selector of an element to fill; without it a floating chat box is added
 * data-k         how many responses to ask for: the best plus runners-up (default 5)
 * data-title     header text (default "Chatbot")
 */
(() => {
  "use strict";

  const script = document.currentScript;
  const options = {
    endpoint: script.dataset.endpoint || new URL("/respond", script.src).href,
    target: script.dataset.target || "",
    k: Number(script.dataset.k || 5),
    title: script.dataset.title || "Chatbot",
  };
  // The service's default limit; older turns are trimmed rather than refused.
  const MAX_TURNS = 50;

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

    let turns = [];
    const say = (who, text) => {
      const item = el("li", `cbw-msg cbw-${who}`);
      item.append(el("p", "cbw-text", text));
      log.append(item);
      log.scrollTop = log.scrollHeight;
      return item;
    };

    reset.addEventListener("click", () => {
      turns = [];
      log.replaceChildren();
      input.focus();
    });

    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const text = input.value.trim();
      if (!text) return;
      input.value = "";
      send.disabled = true;
      turns.push(text);
      say("user", text);
      const pending = say("bot", "…");
      pending.classList.add("cbw-pending");
      try {
        const answer = await ask(turns.slice(-MAX_TURNS));
        pending.replaceWith(renderAnswer(answer));
        turns.push(answer.responses[0].text);
      } catch (error) {
        turns.pop(); // the message was not answered: leave it out of the context
        pending.replaceWith(el("li", "cbw-msg cbw-error", error.message));
      } finally {
        send.disabled = false;
        log.scrollTop = log.scrollHeight;
        input.focus();
      }
    });
    return { panel, input };
  }

  async function ask(context) {
    let response;
    try {
      response = await fetch(options.endpoint, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ context, k: options.k }),
      });
    } catch {
      throw new Error("Cannot reach the chatbot. Is the service running?");
    }
    const body = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(`Sorry: ${body.detail || response.statusText}`);
    if (!body.responses || body.responses.length === 0) throw new Error("No answer found.");
    return body;
  }

  function renderAnswer(answer) {
    const [best, ...others] = answer.responses;
    const item = el("li", "cbw-msg cbw-bot");
    item.append(el("p", "cbw-text", best.text));
    item.title = `score ${best.score.toFixed(2)} · ${answer.model} · ${Math.round(answer.took_ms)} ms`;
    if (others.length > 0) {
      const more = el("details", "cbw-more");
      more.append(el("summary", "", `Runners-up (${others.length})`));
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
