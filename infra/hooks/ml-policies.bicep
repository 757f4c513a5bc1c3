// Optional (azd env set ASSIGN_ML_POLICIES true; deployed by the postprovision hook into the
// workspace's resource group, never by main.bicep): the built-in Azure Policy definitions for Azure Machine Learning a
// platform team usually starts with (category "Machine Learning" in Azure/azure-policy), assigned on the workspace's resource
// group with enforcementMode DoNotEnforce. Nothing is denied or modified; the compliance blade
// reports the workspace (and its computes) against each one. Only Audit/AuditIfNotExists
// definitions are listed, and none takes a required parameter, so their defaults apply.
param workspaceName string
@description('azd environment: assignment names are per environment, so teardown removes only its own.')
param environmentName string

var auditDefinitions = [
  { id: '438c38d2-3772-465a-a9cc-7a6666a275ce', name: 'aml-no-public-network' }
  { id: '45e05259-1eb5-4f70-9574-baf73e9d219b', name: 'aml-private-link' }
  { id: 'ba769a63-b8cc-4b2d-abf6-ac33c7204be8', name: 'aml-cmk-encryption' }
  { id: '5f0c7d88-c7de-45b8-ac49-db49e72eaa78', name: 'aml-user-assigned-identity' }
  { id: 'e96a9a5f-07ca-471b-9bc5-6a0f33cbd68f', name: 'aml-compute-no-local-auth' }
  { id: '7804b5c7-01dc-4723-969b-ae300cc07ff1', name: 'aml-compute-in-vnet' }
  { id: '679ddf89-ab8f-48a5-9029-e76054077449', name: 'aml-compute-idle-shutdown' }
  { id: 'f110a506-2dcb-422e-bcea-d533fc8c35e2', name: 'aml-compute-recreated' }
  { id: 'afe0c3be-ba3b-4544-ba52-0c99672a8ad6', name: 'aml-resource-logs' }
]

// justify: policy assignments are not among the checked versions; 2024-04-01 is a GA version that has enforcementMode.
resource auditAssignments 'Microsoft.Authorization/policyAssignments@2024-04-01' = [for definition in auditDefinitions: {
  name: take('${definition.name}-${uniqueString(resourceGroup().id, workspaceName, environmentName)}', 64)
  properties: {
    displayName: 'AML audit (${workspaceName}, ${environmentName}): ${definition.name}'
    policyDefinitionId: tenantResourceId('Microsoft.Authorization/policyDefinitions', definition.id)
    enforcementMode: 'DoNotEnforce'
  }
}]
