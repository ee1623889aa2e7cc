-- wrk replay of signed Twilio status callbacks, for comparing Switchboard with a bare server
-- using a C load generator that costs far less CPU than a Go one.
--
--   wrk -t1 -c32 -d10s -s cmd/callbackload/wrk/replay.lua http://127.0.0.1:8080 -- callbacks.replay
--
-- The replay file is written by `go run ./cmd/callbackload -replay-out FILE -public-url URL`
-- (and may be re-signed by Twilio's own helper library: cmd/callbackload/wrk/sign.mjs); one
-- callback a line: path and query, tab, X-Twilio-Signature, tab, form body. The signatures are
-- over the public URL the file was written for, so the server must run with that
-- SWITCHBOARD_PUBLIC_URL. Every request is built once, in init; request() only hands them out.
-- With several threads, thread k sends every k-th callback, so no callback is sent twice
-- before the file wraps around (after which the store sees duplicates, which it acknowledges).

local threads = {}

function setup(thread)
  thread:set("index", #threads)
  table.insert(threads, thread)
  for _, t in ipairs(threads) do
    t:set("count", #threads)
  end
end

local reqs, n, i = {}, 0, 0

function init(args)
  local file = args[1]
  if not file then
    error("usage: wrk ... -s replay.lua URL -- FILE")
  end
  local step = tonumber(wrk.thread:get("count") or "1")
  local index = tonumber(wrk.thread:get("index") or "0")
  local k = 0
  for line in io.lines(file) do
    if k % step == index then
      local path, sig, body = line:match("^([^\t]*)\t([^\t]*)\t(.*)$")
      if path then
        n = n + 1
        reqs[n] = wrk.format("POST", path, {
          ["Content-Type"] = "application/x-www-form-urlencoded",
          ["X-Twilio-Signature"] = sig,
        }, body)
      end
    end
    k = k + 1
  end
  if n == 0 then
    error("no callbacks in " .. file)
  end
end

function request()
  i = i + 1
  if i > n then i = 1 end
  return reqs[i]
end
