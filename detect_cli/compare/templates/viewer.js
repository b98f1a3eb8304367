// The picture viewer: a thumbnail opens its input large, one panel per model, each model's boxes drawn
// as SVG over the picture from its detections (so they can be hidden); arrow keys move in gallery order.
(() => {
  const data = JSON.parse(document.getElementById("viewer-data").textContent);
  const viewer = document.getElementById("viewer");
  const panels = viewer.querySelector(".panels");
  const toggles = viewer.querySelector(".toggles");
  const SVG = "http://www.w3.org/2000/svg";
  const hidden = new Set();
  let at = -1;
  const el = (tag, props = {}, ...children) => {
    const node = Object.assign(document.createElement(tag), props);
    node.append(...children);
    return node;
  };
  const ms = (v) => (v === null ? "—" : `${Math.round(v)} ms`);

  function boxes(model, size, color) {
    const svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("viewBox", `0 0 ${size[0]} ${size[1]}`);
    svg.setAttribute("preserveAspectRatio", "none");
    svg.dataset.model = model.label;
    svg.style.display = hidden.has(model.label) ? "none" : "";
    for (const [x1, y1, x2, y2, name, conf] of model.boxes) {
      const rect = document.createElementNS(SVG, "rect");
      Object.entries({ x: x1, y: y1, width: x2 - x1, height: y2 - y1, stroke: color }).forEach(([k, v]) =>
        rect.setAttribute(k, v));
      const title = document.createElementNS(SVG, "title");
      title.textContent = `${model.label}: ${name} ${conf.toFixed(2)}`;
      rect.append(title);
      svg.append(rect);
    }
    return svg;
  }

  function show(k) {
    const item = data.items[k];
    at = k;
    viewer.querySelector(".title").textContent = `${k + 1}/${data.items.length} · ${item.title} · ${item.text}`;
    toggles.replaceChildren();
    panels.replaceChildren();
    if (!item.src || !item.size) {
      // The input could not be read again (a URL, a stream): its side-by-side picture, boxes drawn in.
      panels.append(el("div", { className: "panel" },
        el("p", { className: "note", textContent: "The input could not be read again: its side-by-side picture, boxes drawn in." }),
        el("div", { className: "pic" }, el("img", { src: item.href, alt: item.title }))));
      return;
    }
    for (const model of item.models) {
      const color = data.colors[model.label];
      const box = el("input", { type: "checkbox", checked: !hidden.has(model.label) });
      box.addEventListener("change", () => {
        box.checked ? hidden.delete(model.label) : hidden.add(model.label);
        viewer.querySelectorAll(`svg[data-model="${CSS.escape(model.label)}"]`).forEach((s) => {
          s.style.display = box.checked ? "" : "none";
        });
      });
      const swatch = el("span", { className: "sw" });
      swatch.style.background = color;
      toggles.append(el("label", {}, box, " ", swatch, `${model.label} boxes`));
      const head = model.failed ? "failed" : `${ms(model.ms)}, ${model.boxes.length} boxes`;
      const headSwatch = swatch.cloneNode();
      panels.append(el("div", { className: "panel" },
        el("p", { className: "head" }, headSwatch, `${model.label}: ${head}`),
        el("div", { className: "pic" }, el("img", { src: item.src, alt: `${item.title}, ${model.label}` }),
          boxes(model, item.size, color))));
    }
  }

  function open(k) {
    show(k);
    viewer.hidden = false;
    document.body.style.overflow = "hidden";
    viewer.querySelector("[data-close]").focus();
  }

  function close() {
    viewer.hidden = true;
    document.body.style.overflow = "";
    const thumb = document.querySelector(`[data-view="${at}"]`);
    if (thumb) thumb.focus();
    at = -1;
  }

  const go = (step) => show((at + step + data.items.length) % data.items.length);
  document.querySelectorAll("a[data-view]").forEach((a) => a.addEventListener("click", (event) => {
    if (event.ctrlKey || event.metaKey || event.shiftKey) return; // a new tab: the full picture
    event.preventDefault();
    open(Number(a.dataset.view));
  }));
  viewer.querySelectorAll("[data-go]").forEach((b) => b.addEventListener("click", () => go(Number(b.dataset.go))));
  viewer.querySelector("[data-close]").addEventListener("click", close);
  document.addEventListener("keydown", (event) => {
    if (at < 0) return;
    if (event.key === "ArrowRight") go(1);
    else if (event.key === "ArrowLeft") go(-1);
    else if (event.key === "Escape") close();
    else return;
    event.preventDefault();
  });
})();
