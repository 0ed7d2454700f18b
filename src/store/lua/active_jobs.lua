-- active_jobs: the tenant's queued and running jobs in this partition (common.lua active_jobs_of, as create.lua
-- counts them): a partitioned store adds the other partitions' counts to a tenant's active-job limit.
-- KEYS[1] types key (routing)
-- ARGV[1] tenant
return active_jobs_of(ARGV[1])
