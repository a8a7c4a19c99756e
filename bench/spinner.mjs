// bench/script-isolation.sh: N clients that each keep sending `spin` (a script that loops to
// its limit) to the server at URL, until killed. Loopback only.
import { io } from "socket.io-client";

const [url, count = "1", everyMs = "2"] = process.argv.slice(2);
if (!/^http:\/\/127\.\d+\.\d+\.\d+:\d+$/.test(url ?? "")) {
  console.error("usage: node bench/spinner.mjs http://127.0.0.1:PORT [clients] [ms]");
  process.exit(2);
}
for (let i = 0; i < Number(count); i++) {
  const socket = io(url, { transports: ["websocket"] });
  socket.on("connect", () => {
    setInterval(() => socket.emit("spin"), Number(everyMs));
  });
}
