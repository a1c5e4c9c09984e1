-- Argo CD health of a ClusterImportPolicy (policy.clusterpedia.io/v1alpha1), from its conditions.
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
local reconciling = condition("Reconciling")
if validated ~= nil and validated.status == "False" then
  hs.status = "Degraded"
  hs.message = validated.message
elseif reconciling ~= nil and reconciling.status == "True" then
  hs.status = "Healthy"
  hs.message = "importing its source resources"
elseif reconciling ~= nil and reconciling.reason ~= "WaitResourceSynced" then
  hs.status = "Degraded"
  hs.message = reconciling.message
else
  hs.status = "Progressing"
  hs.message = "waiting for the source resources to be listed"
end
return hs
