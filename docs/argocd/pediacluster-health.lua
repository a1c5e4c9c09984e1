-- Argo CD health of a PediaCluster (cluster.clusterpedia.io/v1alpha2), from its conditions.
hs = {}
local function condition(t)
  if obj.status ~= nil and obj.status.conditions ~= nil then
    for _, c in ipairs(obj.status.conditions) do
      if c.type == t then return c end
    end
  end
  return nil
end
local validated = condition("Validated")
local ready = condition("Ready")
local healthy = condition("ClusterHealthy")
if validated ~= nil and validated.status == "False" then
  hs.status = "Degraded"
  hs.message = validated.message
elseif ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = ready.message
elseif healthy ~= nil and healthy.status == "False" then
  hs.status = "Degraded"
  hs.message = healthy.message
else
  hs.status = "Progressing"
  if ready ~= nil and ready.message ~= nil and ready.message ~= "" then
    hs.message = ready.message
  else
    hs.message = "waiting for the cluster synchro"
  end
end
return hs
