#!lua name=hoard_v1
-- hoard's Redis functions (Redis 7+), loaded by the host at start and again
-- whenever a server answers that it does not know them (after a restart
-- without persistence, on a new cluster node). See storage/redis/mod.rs.
--
-- Every write function: KEYS[1] is the data key, KEYS[2] the op's marker
-- (on the same hash slot), the last ARGV the marker's retention in ms. If
-- the marker exists, the op was applied before: its value is the answer
-- and nothing changes. Otherwise the write and the marker, atomically.

-- Writes whose answer is known before they run ('d', done): the marker goes
-- in first, with NX, and only if it was not there does the write run.
local function first_time(keys, args)
    return redis.call('SET', keys[2], 'd', 'NX', 'PX', args[#args])
end

local function mark(keys, args, result)
    redis.call('SET', keys[2], result, 'PX', args[#args])
    return result
end

-- ARGV: value, TTL in ms or ''.
redis.register_function('hoard_set', function(keys, args)
    if not first_time(keys, args) then return redis.call('GET', keys[2]) end
    if args[2] == '' then
        redis.call('SET', keys[1], args[1])
    else
        redis.call('SET', keys[1], args[1], 'PX', args[2])
    end
    return 'd'
end)

redis.register_function('hoard_delete', function(keys, args)
    local earlier = redis.call('GET', keys[2])
    if earlier then return earlier end
    return mark(keys, args, 'e' .. redis.call('DEL', keys[1]))
end)

-- ARGV: delta. The value is read back as text: a Lua number would round
-- integers past 2^53.
redis.register_function('hoard_incr', function(keys, args)
    local earlier = redis.call('GET', keys[2])
    if earlier then return earlier end
    redis.call('INCRBY', keys[1], args[1])
    return mark(keys, args, 'i' .. redis.call('GET', keys[1]))
end)

-- ARGV: field, value.
redis.register_function('hoard_hash_set', function(keys, args)
    if not first_time(keys, args) then return redis.call('GET', keys[2]) end
    redis.call('HSET', keys[1], args[1], args[2])
    return 'd'
end)

-- ARGV: stored (negated) score, member.
redis.register_function('hoard_score_set', function(keys, args)
    if not first_time(keys, args) then return redis.call('GET', keys[2]) end
    redis.call('ZADD', keys[1], args[1], args[2])
    return 'd'
end)

-- ARGV: member, negated delta. Adds only if the result stays finite, as
-- every backend does; the answer is the stored score as Redis keeps it.
redis.register_function('hoard_score_incr', function(keys, args)
    local earlier = redis.call('GET', keys[2])
    if earlier then return earlier end
    local old = tonumber(redis.call('ZSCORE', keys[1], args[1]) or '0')
    local new = old + tonumber(args[2])
    if new ~= new or new == math.huge or new == -math.huge then
        return redis.error_reply('HOARD_NOT_FINITE')
    end
    redis.call('ZADD', keys[1], new, args[1])
    return mark(keys, args, 's' .. redis.call('ZSCORE', keys[1], args[1]))
end)

-- A read: the member's rank, then the rows from rank - n to rank + n.
-- ARGV: member, n.
redis.register_function{
    function_name = 'hoard_around',
    flags = { 'no-writes' },
    callback = function(keys, args)
        local rank = redis.call('ZRANK', keys[1], args[1])
        if not rank then return {} end
        local n = tonumber(args[2])
        local first = rank - n
        if first < 0 then first = 0 end
        return {first, redis.call('ZRANGE', keys[1], first, rank + n, 'WITHSCORES')}
    end,
}
