#!/usr/bin/env python3
"""The page of `distrain serve` in headless Chromium, through the DevTools protocol: an image chosen in its
file input and a prompt opened from a link, each answer read back from the page and screenshotted.

    pip install websocket-client            # a tool, not a distrain dependency; chromium is a Debian package
    distrain serve --checkpoint mlp=runs/mlp --checkpoint kjv=runs/kjv --port 8080 &
    launch/check-serve-page.py http://127.0.0.1:8080 mlp digit.png kjv "And God said"
Prints each answer as the page shows it (compare with `distrain predict` / `distrain generate`) and writes
page-image.png and page-completion.png.
"""
import base64, json, subprocess, sys, time, urllib.parse, urllib.request
import websocket


class Browser:
    def __init__(self, port=9335):
        self.process = subprocess.Popen(["chromium", "--headless=new", "--no-sandbox", "--disable-gpu",
                                         f"--remote-debugging-port={port}", "--window-size=900,640", "about:blank"],
                                        stderr=subprocess.DEVNULL)
        for _ in range(100):
            try:
                targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json"))
                break
            except OSError:
                time.sleep(0.1)
        page = [t for t in targets if t["type"] == "page"][0]
        self.socket = websocket.create_connection(page["webSocketDebuggerUrl"])
        self.count = 0
        self.call("Page.enable")
        self.call("DOM.enable")

    def call(self, method, **params):
        self.count += 1
        self.socket.send(json.dumps({"id": self.count, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv())
            if message.get("id") == self.count:
                return message.get("result", {})

    def open(self, url, wait=1.5):
        self.call("Page.navigate", url=url)
        time.sleep(wait)

    def output(self):
        return self.call("Runtime.evaluate", expression="document.getElementById('out').innerText")["result"]["value"]

    def screenshot(self, path):
        with open(path, "wb") as file:
            file.write(base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"]))

    def close(self):
        self.process.terminate()


def main():
    server, image_model, image, lm_model, prompt = sys.argv[1:6]
    browser = Browser()
    try:
        browser.open(f"{server}/?model={urllib.parse.quote(image_model)}")
        root = browser.call("DOM.getDocument")["root"]["nodeId"]
        node = browser.call("DOM.querySelector", nodeId=root, selector="#file")["nodeId"]
        browser.call("DOM.setFileInputFiles", nodeId=node, files=[image])
        time.sleep(1.5)
        print("image:", json.dumps(browser.output()))
        browser.screenshot("page-image.png")
        query = urllib.parse.urlencode({"model": lm_model, "prompt": prompt, "max_tokens": 40, "temperature": 0})
        browser.open(f"{server}/?{query}", wait=2)
        print("completion:", json.dumps(browser.output()))
        browser.screenshot("page-completion.png")
    finally:
        browser.close()


if __name__ == "__main__":
    main()
