#!lua name=hoard_cluster_v1
-- Session ownership across host instances (Redis 7+), loaded by the host
-- at start and again whenever a server has lost it. See cluster.rs.
--
-- A lease is the value '<instance> <fence>' with a time to live. The fence
-- is a counter per session, one more at every claim, so an instance that
-- lost its lease and took it again knows someone may have written between.
-- The lease, its counter and the session record share a hash slot.

-- KEYS[1] the lease, KEYS[2] the fence counter, KEYS[3] the record.
-- ARGV: instance, lease ms, counter retention ms, 'new' for a session
-- being created (else the record must exist).
-- {1, fence} when the instance held the lease and renewed it, {2, fence}
-- when it has just taken it; {0, holder} when another instance holds it;
-- {3, ''} when there is no such session (nothing is written).
redis.register_function('hoard_claim', function(keys, args)
    local current = redis.call('GET', keys[1])
    if current then
        local holder, fence = string.match(current, '^(.*) (%d+)$')
        if holder == args[1] then
            redis.call('PEXPIRE', keys[1], args[2])
            redis.call('PEXPIRE', keys[2], args[3])
            return {1, fence}
        end
        return {0, holder}
    end
    if args[4] ~= 'new' and redis.call('EXISTS', keys[3]) == 0 then
        return {3, ''}
    end
    local fence = redis.call('INCR', keys[2])
    redis.call('PEXPIRE', keys[2], args[3])
    redis.call('SET', keys[1], args[1] .. ' ' .. fence, 'PX', args[2])
    return {2, tostring(fence)}
end)

-- KEYS[1] the lease. ARGV: instance, fence. Drops the lease if it is still
-- that one.
redis.register_function('hoard_release', function(keys, args)
    if redis.call('GET', keys[1]) == args[1] .. ' ' .. args[2] then
        return redis.call('DEL', keys[1])
    end
    return 0
end)

-- KEYS[1] the session record, KEYS[2] its lease, KEYS[3] its fence
-- counter. ARGV: instance, fence, record, record TTL ms, lease ms.
-- Stores the record only while the lease is still the instance's under
-- that fence (and renews it): 1 if stored, 0 if the lease has moved. The
-- counter outlives the record, so a fence is never handed out twice.
redis.register_function('hoard_fenced_set', function(keys, args)
    if redis.call('GET', keys[2]) ~= args[1] .. ' ' .. args[2] then
        return 0
    end
    redis.call('SET', keys[1], args[3], 'PX', args[4])
    redis.call('PEXPIRE', keys[2], args[5])
    redis.call('PEXPIRE', keys[3], tonumber(args[4]) + 60000)
    return 1
end)
