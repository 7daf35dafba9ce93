package limiter

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// leaseScript is the shared bucket in Redis: one GCRA step with leases, in
// the style of go-redis/redis_rate (Redis's own clock from TIME, one key
// per bucket, so it runs unchanged on a Redis Cluster), extended with holds
// (see gcra.go, which is the same arithmetic in Go, and docs/ratelimit.md).
//
// The bucket is a hash: t (TAT, µs since 2017-01-01, as redis_rate counts),
// g (the bucket's generation: a new one whenever the key is created, so a
// holder can tell a bucket that Redis lost), n (tokens taken since it was
// created, net of returns), and h:<holder> = "seq tokens expiry" per
// gateway that holds (or recently held) a pocket.
//
// Quotas (contract §10) are checked in this same call: KEYS[2] is the key's
// quota counter for the current UTC period (internal/quota names it, with
// the same hash tag as the bucket, so both live in one Cluster slot), a
// plain integer string: the units granted in the period, leased ones
// included. ARGV[17…25] carry the quota; without them (a key without a
// quota) the call is the rate limit alone, unchanged. A call that charges
// local-mode admissions also names KEYS[3], the counter's ledger
// (quota.LocalKey): per gateway, what it has charged in the period, so a
// charge sent twice counts once. A hold's record then
// has a fourth word, the mark of the period (the counter) its tokens were
// counted under: "seq tokens expiry 2026-12".
var leaseScript = redis.NewScript(`
redis.replicate_commands()
local key = KEYS[1]
local e = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local holder = ARGV[3]
local seq = tonumber(ARGV[4])
local confirm = tonumber(ARGV[5])
local keep = tonumber(ARGV[6])
local ret = tonumber(ARGV[7])
local need = tonumber(ARGV[8])
local extra = tonumber(ARGV[9])
local debt = tonumber(ARGV[10])
local gateways = math.max(1, tonumber(ARGV[11]))
local cost = math.max(1, tonumber(ARGV[12]))
local gen_seen = ARGV[13]
local hint = tonumber(ARGV[14])
local ttl = tonumber(ARGV[15])
local retain = tonumber(ARGV[16])
local qlimit = tonumber(ARGV[17] or '0')
local quota = qlimit > 0
local qkey, qmark, qstart, qend, qoff, qdebt, qhint, qmargin, qacked = '', ''
if quota then
  qkey = KEYS[2]
  qmark = ARGV[18]
  qstart = tonumber(ARGV[19])
  qend = tonumber(ARGV[20])
  qoff = tonumber(ARGV[21])
  qdebt = tonumber(ARGV[22])
  qhint = tonumber(ARGV[23])
  qmargin = tonumber(ARGV[24])
  qacked = tonumber(ARGV[25])
end

local t = redis.call('TIME')
local now = (tonumber(t[1]) - 1483228800) * 1000000 + tonumber(t[2])

local tat, gen
local taken = 0
local holds = {}
local raw = redis.call('HGETALL', key)
for i = 1, #raw, 2 do
  local f, v = raw[i], raw[i + 1]
  if f == 't' then
    tat = tonumber(v)
  elseif f == 'g' then
    gen = v
  elseif f == 'n' then
    taken = tonumber(v)
  elseif string.sub(f, 1, 2) == 'h:' then
    local s, n, x, m = string.match(v, '^(%d+) (%d+) (%d+) ?(%S*)$')
    if s then holds[string.sub(f, 3)] = {tonumber(s), tonumber(n), tonumber(x), m} end
  end
end

-- A call older than one already applied (it was given up on, and arrived
-- late): change nothing.
local own = holds[holder]
if own and own[1] >= seq then
  return {-1}
end
-- The quota's period is decided on Redis's clock: a caller that named
-- another period's counter asks again (nothing changed).
if quota and (now + qoff < qstart or now + qoff >= qend) then
  return {-2, now}
end
if not tat then
  tat = now
  gen = t[1] .. '.' .. t[2] .. '-' .. holder
  taken = 0
  holds = {}
  own = nil
end
-- A bucket Redis lost (restart, failover) starts from what this holder
-- last saw of it, not full: that state plus what was taken since.
if hint > 0 and gen_seen ~= gen then
  tat = math.max(tat, hint + taken * e)
end
-- The quota counter; one Redis lost starts from what this holder last saw.
local qused = -1
if quota then
  local raw = redis.call('GET', qkey)
  if raw then
    qused = tonumber(raw)
    if not qused then return redis.error_reply('quota counter ' .. qkey .. ' is not a number') end
  else
    qused = math.max(0, qhint)
  end
  -- Local-mode admissions: this holder's total in the period, charged
  -- only for what the ledger has not seen (once, however often it is sent).
  if qdebt > 0 then
    local charged = tonumber(redis.call('HGET', KEYS[3], holder) or qacked)
    qused = qused + math.max(0, qdebt - charged)
    redis.call('HSET', KEYS[3], holder, string.format('%d', math.max(charged, qdebt)))
    redis.call('PEXPIRE', KEYS[3], string.format('%d', math.ceil((qend - (now + qoff) + 86400000000) / 1000)))
  end
end

-- Holds past their expiry count as spent at their expiry.
local held = 0
local expired = {}
for _, v in pairs(holds) do
  if v[2] > 0 then
    held = held + v[2]
    if v[3] <= now then expired[#expired + 1] = v end
  end
end
table.sort(expired, function(a, b) return a[3] < b[3] end)
for _, v in ipairs(expired) do
  tat = math.max(tat, v[3] + held * e)
  held = held - v[2]
  v[2] = 0
end
tat = math.max(tat, now + held * e)

-- This holder's previous pocket: what it keeps stays held, what it returns
-- goes back to the bucket, the rest was spent. Its quota units were
-- counted under own[4]: settled only against the same counter.
local found = 0
if own and own[2] > 0 and confirm > 0 and own[1] >= confirm and own[4] == qmark then
  found = 1
  keep = math.min(keep, own[2])
  ret = math.min(ret, own[2] - keep)
  held = held - own[2]
  tat = tat - ret * e
  if quota then qused = math.max(0, qused - ret) end
else
  keep = 0
  ret = 0
end
tat = math.max(tat, now + held * e)
tat = tat + debt * e

local avail = burst - (tat - now) / e
local g_need = math.max(0, math.min(need, math.floor((avail + 1e-9) / cost) * cost))
local qleft = 0
if quota then
  -- The quota bounds the grant: whole requests of cost from what is left.
  qleft = math.max(0, qlimit - qused)
  g_need = math.min(g_need, math.floor(qleft / cost) * cost)
end
local g_extra = 0
if extra > 0 then
  local spare = avail - g_need
  g_extra = math.max(0, math.min(extra, math.floor((spare + 1e-9) / (2 * gateways)),
    math.floor(burst / (50 * gateways)) - keep))
  if quota then
    -- Leases take quota units too: at most half of what is left shared by
    -- the gateways, all pockets together at most 2 % of the quota, none
    -- near the period's end.
    if qend - (now + qoff) < qmargin then
      g_extra = 0
    else
      g_extra = math.max(0, math.min(g_extra, math.floor((qleft - g_need) / (2 * gateways)),
        math.floor(qlimit / (50 * gateways)) - keep))
    end
  end
end
if quota then
  qused = qused + g_need + g_extra
  -- It lives a day past its period (quota.ExpireAt), for late readers.
  redis.call('SET', qkey, string.format('%d', qused), 'PX',
    string.format('%d', math.ceil((qend - (now + qoff) + 86400000000) / 1000)))
end
tat = tat + (g_need + g_extra) * e
taken = taken + debt + g_need + g_extra - ret
local own_held = keep + g_extra
avail = burst - (tat - now) / e
if own_held > 0 then
  holds[holder] = {seq, own_held, math.floor(now + ttl), qmark}
else
  holds[holder] = {seq, 0, now, ''}
end

-- When would a request of cost pass if nobody spent anything more? Held
-- tokens block it while more than burst - cost are held; each hold is
-- taken to be spent at its expiry.
local at = tat + (cost - burst) * e
local all_held = held + own_held
if all_held > burst - cost then
  local active = {}
  for _, v in pairs(holds) do
    if v[2] > 0 then active[#active + 1] = v end
  end
  table.sort(active, function(a, b) return a[3] < b[3] end)
  local tt = tat
  for _, v in ipairs(active) do
    tt = math.max(tt, v[3] + all_held * e)
    all_held = all_held - v[2]
    if all_held <= burst - cost then
      at = math.max(tt + (cost - burst) * e, v[3])
      break
    end
  end
end

local live = tat - now
local fields = {'t', tat, 'g', gen, 'n', taken}
for h, v in pairs(holds) do
  if v[2] > 0 then
    live = math.max(live, v[3] - now)
  end
  if v[2] == 0 and v[3] + retain < now then
    redis.call('HDEL', key, 'h:' .. h)
  else
    fields[#fields + 1] = 'h:' .. h
    local rec = string.format('%d %d %d', v[1], v[2], v[3])
    if v[2] > 0 and v[4] and v[4] ~= '' then rec = rec .. ' ' .. v[4] end
    fields[#fields + 1] = rec
  end
end
redis.call('HSET', key, unpack(fields))
redis.call('PEXPIRE', key, math.ceil((math.max(live, 0) + retain) / 1000))
return {g_need, g_extra, found, math.floor(avail + 1e-9), math.ceil(tat - now), math.ceil(at - now), now, gen, qused}
`)

// Redis is the shared bucket store on a Redis server, Sentinel or Cluster:
// one EVALSHA of leaseScript per call (one EVAL more after Redis lost its
// script cache). Concurrent calls are pipelined (batchingClient).
type Redis struct {
	client redis.UniversalClient
	batch  *batchingClient
}

// NewRedis wraps a client; Close stops the pipelining workers.
func NewRedis(client redis.UniversalClient) *Redis {
	return &Redis{client: client, batch: newBatchingClient(client)}
}

// Close stops the pipelining workers. It does not close the client.
func (r *Redis) Close() { r.batch.close() }

// LoadScript sends the script to Redis ahead of the first call, so that
// call is one round trip.
func (r *Redis) LoadScript(ctx context.Context) error {
	return leaseScript.Load(ctx, r.client).Err()
}

var errStaleCall = errors.New("lease call older than one already applied")

// lease runs one call of the script on bucket (and on a.qkey, the key's
// quota counter, when a.qlimit > 0).
func (r *Redis) lease(ctx context.Context, bucket string, a leaseArgs) (leaseResult, error) {
	var cmd *redis.Cmd
	if a.qlimit > 0 {
		keys := []string{bucket, a.qkey}
		if a.qdebt > 0 {
			keys = append(keys, a.qledger)
		}
		cmd = leaseScript.Run(ctx, r.batch, keys,
			a.emission, a.burst, a.holder, a.seq, a.confirm, a.keep, a.ret, a.need, a.extra,
			a.debt, a.gateways, a.cost, a.genSeen, a.hint, a.ttl, a.retain,
			a.qlimit, a.qmark, a.qstart, a.qend, a.qoff, a.qdebt, a.qhint, a.qmargin, a.qacked)
	} else {
		cmd = leaseScript.Run(ctx, r.batch, []string{bucket},
			a.emission, a.burst, a.holder, a.seq, a.confirm, a.keep, a.ret, a.need, a.extra,
			a.debt, a.gateways, a.cost, a.genSeen, a.hint, a.ttl, a.retain)
	}
	v, err := cmd.Slice()
	if err != nil {
		return leaseResult{}, err
	}
	return parseLeaseReply(v)
}

// parseLeaseReply reads the script's answer; anything malformed is an error
// (and so a degraded decision), never a crash.
func parseLeaseReply(v []any) (leaseResult, error) {
	if len(v) == 1 {
		if n, ok := v[0].(int64); ok && n == -1 {
			return leaseResult{stale: true, qused: -1}, nil
		}
	}
	if len(v) == 2 {
		code, ok1 := v[0].(int64)
		now, ok2 := v[1].(int64)
		if ok1 && ok2 && code == -2 {
			return leaseResult{wrongPeriod: true, now: float64(now), qused: -1}, nil
		}
	}
	if len(v) != 9 {
		return leaseResult{}, fmt.Errorf("unexpected reply from the lease script: %d values", len(v))
	}
	var n [9]int64
	for i := range n {
		if i == 7 {
			continue
		}
		x, ok := v[i].(int64)
		if !ok {
			return leaseResult{}, fmt.Errorf("unexpected reply from the lease script: value %d is %T", i, v[i])
		}
		n[i] = x
	}
	gen, ok := v[7].(string)
	if !ok {
		return leaseResult{}, fmt.Errorf("unexpected reply from the lease script: generation is %T", v[7])
	}
	if n[0] < 0 || n[1] < 0 {
		return leaseResult{}, errors.New("unexpected reply from the lease script: negative grant")
	}
	if n[8] < -1 {
		return leaseResult{}, errors.New("unexpected reply from the lease script: negative quota count")
	}
	return leaseResult{
		need: n[0], extra: n[1], found: n[2] == 1, avail: n[3],
		tatRel: float64(n[4]), retryRel: float64(n[5]), now: float64(n[6]), gen: gen, qused: n[8],
	}, nil
}
