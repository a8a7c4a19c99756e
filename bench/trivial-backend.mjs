// The app's backend at its cheapest, for bench/backend.sh: every POST is answered at once
// with the same route, `{"ack":"ok"}`. Prints "listening on http://…" with its port.
import { createServer } from "node:http";

const answer = Buffer.from('{"ack":"ok"}');
const server = createServer((req, res) => {
  req.resume();
  req.on("end", () => {
    res.writeHead(200, { "content-type": "application/json", "content-length": answer.length });
    res.end(answer);
  });
});
server.keepAliveTimeout = 60_000;
server.listen(0, "127.0.0.1", () => console.log(`listening on http://127.0.0.1:${server.address().port}`));
