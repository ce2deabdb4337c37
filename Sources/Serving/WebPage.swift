/// The page at `/`: pick a model; drop an image or type a table's values and see the top classes; type a
/// prompt and watch the completion stream in. Plain HTML and JavaScript, served from memory.
enum WebPage {
    static let html = """
    <!doctype html>
    <html lang="en"><head><meta charset="utf-8"><title>distrain serve</title>
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <style>
    body{font:15px/1.45 system-ui,sans-serif;max-width:760px;margin:2em auto;padding:0 1em;color:#222}
    h1{font-size:1.4em} select,input,textarea,button{font:inherit} textarea{width:100%;height:6em}
    #drop{border:2px dashed #888;border-radius:8px;padding:2em;text-align:center;color:#555;margin:1em 0}
    #drop.over{background:#eef} table{border-collapse:collapse} td{padding:2px 10px}
    .bar{background:#4a7;height:12px;display:inline-block} #out{white-space:pre-wrap;border:1px solid #ccc;
    padding:1em;min-height:4em;border-radius:6px;background:#fafafa} .err{color:#b00} small{color:#666}
    </style></head><body>
    <h1>distrain serve</h1>
    <p><label>Model <select id="model"></select></label> <small id="info"></small></p>
    <p><label>API key <input id="key" type="password" placeholder="only if the server has --api-key"></label></p>
    <section id="image" hidden><div id="drop">Drop an image here, or <input type="file" id="file" accept="image/*"></div></section>
    <section id="table" hidden><div id="fields"></div><button id="send">Predict</button></section>
    <section id="lm" hidden><textarea id="prompt">In the beginning</textarea>
    <p><label>max tokens <input id="max" type="number" value="100" min="1" style="width:6em"></label>
    <label>temperature <input id="temp" type="number" value="0.8" step="0.1" min="0" style="width:5em"></label>
    <button id="go">Generate</button> <button id="halt">Stop</button></p></section>
    <div id="out"></div>
    <script>
    let models = [], controller = null;
    const $ = id => document.getElementById(id), out = $("out");
    const headers = extra => Object.assign($("key").value ? {Authorization: "Bearer " + $("key").value} : {}, extra || {});
    function current() { return models.find(m => m.id === $("model").value); }
    function fail(text) { out.innerHTML = ""; const e = document.createElement("span"); e.className = "err";
      e.textContent = text; out.appendChild(e); }
    async function problem(r) { try { return (await r.json()).error.message; } catch (e) { return r.status + " " + r.statusText; } }
    function show(prediction) {
      out.innerHTML = "";
      if (prediction.top === undefined) { out.textContent = JSON.stringify(prediction); return; }
      const table = document.createElement("table");
      for (const c of prediction.top) { const row = table.insertRow();
        const name = c.class ?? c.name, value = c.probability ?? c.value; row.insertCell().textContent = name;
        const bar = document.createElement("span"); bar.className = "bar";
        bar.style.width = (c.probability === undefined ? 0 : 200 * value) + "px";
        row.insertCell().appendChild(bar); row.insertCell().textContent = value.toFixed(4); }
      out.appendChild(table);
    }
    async function predict(body, type) {
      const r = await fetch("/v1/models/" + encodeURIComponent(current().id) + "/predict?top_k=5",
        {method: "POST", headers: headers({"Content-Type": type}), body});
      if (!r.ok) return fail(await problem(r));
      show((await r.json()).predictions[0]);
    }
    function choose() {
      const m = current(), d = m.distrain; $("info").textContent = d.task + ", " + d.architecture +
        (d.input_shape ? ", input " + d.input_shape.join("x") : "") + (d.context ? ", context " + d.context : "");
      $("image").hidden = !(d.task !== "language-model" && !d.features);
      $("table").hidden = !d.features; $("lm").hidden = d.task !== "language-model"; out.textContent = "";
      if (d.features) { $("fields").innerHTML = ""; for (const f of d.features) { const l = document.createElement("label");
        l.textContent = f + " "; const i = document.createElement("input"); i.dataset.feature = f; i.value = "0";
        i.style.width = "6em"; l.appendChild(i); $("fields").appendChild(l); $("fields").appendChild(document.createTextNode(" ")); } }
    }
    $("model").onchange = choose;
    $("file").onchange = e => e.target.files[0] && predict(e.target.files[0], e.target.files[0].type || "image/png");
    const drop = $("drop");
    drop.ondragover = e => { e.preventDefault(); drop.className = "over"; };
    drop.ondragleave = () => drop.className = "";
    drop.ondrop = e => { e.preventDefault(); drop.className = ""; const f = e.dataTransfer.files[0];
      if (f) predict(f, f.type || "image/png"); };
    $("send").onclick = () => { const row = {};
      for (const i of document.querySelectorAll("[data-feature]")) row[i.dataset.feature] = Number(i.value);
      predict(JSON.stringify({instances: [row]}), "application/json"); };
    $("halt").onclick = () => controller && controller.abort();
    $("go").onclick = async () => {
      out.textContent = $("prompt").value; controller = new AbortController();
      const body = {model: current().id, prompt: $("prompt").value, max_tokens: Number($("max").value),
        temperature: Number($("temp").value), stream: true};
      try {
        const r = await fetch("/v1/completions", {method: "POST", headers: headers({"Content-Type": "application/json"}),
          body: JSON.stringify(body), signal: controller.signal});
        if (!r.ok) return fail(await problem(r));
        const reader = r.body.getReader(), decoder = new TextDecoder(); let buffer = "";
        for (;;) { const {value, done} = await reader.read(); if (done) break;
          buffer += decoder.decode(value, {stream: true}); let at;
          while ((at = buffer.indexOf("\\n\\n")) >= 0) { const event = buffer.slice(0, at); buffer = buffer.slice(at + 2);
            if (!event.startsWith("data: ") || event === "data: [DONE]") continue;
            out.textContent += JSON.parse(event.slice(6)).choices[0].text; } }
      } catch (e) { if (e.name !== "AbortError") fail(String(e)); }
    };
    fetch("/v1/models", {headers: headers()}).then(async r => {
      if (!r.ok) return fail(await problem(r) + " (enter the API key and reload)");
      models = (await r.json()).data;
      for (const m of models) { const o = document.createElement("option"); o.value = o.textContent = m.id; $("model").appendChild(o); }
      // A shareable link: /?model=NAME&prompt=TEXT[&max_tokens=N&temperature=T] opens on that model and generates.
      const query = new URLSearchParams(location.search);
      if (query.get("model") && models.some(m => m.id === query.get("model"))) $("model").value = query.get("model");
      if (models.length) choose();
      if (query.get("prompt") !== null && current().distrain.task === "language-model") {
        $("prompt").value = query.get("prompt");
        if (query.get("max_tokens")) $("max").value = query.get("max_tokens");
        if (query.get("temperature")) $("temp").value = query.get("temperature");
        $("go").onclick();
      }
    });
    </script></body></html>
    """
}
