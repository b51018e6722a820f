"""Request body schemas from the published Azure ML REST specification, for the bodies this app sends.

Written out from the definitions in Azure/azure-rest-api-specs,
``specification/machinelearningservices/resource-manager/Microsoft.MachineLearningServices/stable/2025-09-01/
mfe.json`` (the definition each schema follows is named beside it). Only the parts the app's requests use are
kept, with the spec's ``required`` lists, enums and types, so a body the service would reject fails here.
"""

from __future__ import annotations

from typing import Any

import jsonschema

_TAGS = {"type": "object", "additionalProperties": {"type": ["string", "null"]}}
_RESOURCE_BASE = {  # ResourceBase: description, properties, tags
    "description": {"type": ["string", "null"]},
    "properties": _TAGS,
    "tags": _TAGS,
}
_IDENTITY = {  # ManagedServiceIdentity (common-types v5)
    "type": "object", "required": ["type"],
    "properties": {"type": {"enum": ["None", "SystemAssigned", "UserAssigned", "SystemAssigned,UserAssigned"]}},
}

SCHEMAS: dict[str, dict[str, Any]] = {
    # DataVersionBaseResource -> DataVersionBase (discriminator dataType)
    "DataVersionBaseResource": {
        "type": "object", "required": ["properties"],
        "properties": {"properties": {
            "type": "object", "required": ["dataType", "dataUri"],
            "properties": {**_RESOURCE_BASE, "dataType": {"enum": ["uri_file", "uri_folder", "mltable"]},
                           "dataUri": {"type": "string", "minLength": 1, "pattern": "[a-zA-Z0-9_]"},
                           "isAnonymous": {"type": "boolean"}, "isArchived": {"type": "boolean"}}}},
    },
    # JobBaseResource -> JobBase (discriminator jobType) -> PipelineJob
    "JobBaseResource/PipelineJob": {
        "type": "object", "required": ["properties"],
        "properties": {"properties": {
            "type": "object", "required": ["jobType"],
            "properties": {**_RESOURCE_BASE,
                           "jobType": {"enum": ["AutoML", "Command", "Sweep", "Pipeline", "Spark"]},
                           "displayName": {"type": ["string", "null"]},
                           "experimentName": {"type": "string"},
                           "computeId": {"type": ["string", "null"]},
                           "isArchived": {"type": "boolean"},
                           "inputs": {"type": "object", "additionalProperties": {
                               "type": "object", "required": ["jobInputType"],
                               "properties": {"jobInputType": {"enum": [
                                   "literal", "uri_file", "uri_folder", "mltable", "custom_model", "mlflow_model",
                                   "triton_model"]}, "uri": {"type": "string", "minLength": 1}}}},
                           "outputs": {"type": "object", "additionalProperties": {
                               "type": "object", "required": ["jobOutputType"],
                               "properties": {"jobOutputType": {"enum": [
                                   "uri_file", "uri_folder", "mltable", "custom_model", "mlflow_model",
                                   "triton_model"]}}}},
                           "jobs": {"type": "object", "additionalProperties": {"type": "object"}},
                           "settings": {"type": "object"}}}},
    },
    # ModelVersionResource -> ModelVersion
    "ModelVersionResource": {
        "type": "object", "required": ["properties"],
        "properties": {"properties": {
            "type": "object",
            "properties": {**_RESOURCE_BASE, "modelType": {"type": "string"}, "modelUri": {"type": "string"},
                           "flavors": {"type": ["object", "null"]}, "jobName": {"type": ["string", "null"]},
                           "isAnonymous": {"type": "boolean"}, "isArchived": {"type": "boolean"}}}},
    },
    # OnlineEndpointTrackedResource -> OnlineEndpoint (TrackedResource requires location)
    "OnlineEndpointTrackedResource": {
        "type": "object", "required": ["location", "properties"],
        "properties": {
            "location": {"type": "string", "minLength": 1}, "tags": _TAGS, "identity": _IDENTITY,
            "properties": {
                "type": "object", "required": ["authMode"],
                "properties": {**_RESOURCE_BASE, "authMode": {"enum": ["AMLToken", "Key", "AADToken"]},
                               "traffic": {"type": "object", "additionalProperties": {"type": "integer"}},
                               "mirrorTraffic": {"type": "object", "additionalProperties": {"type": "integer"}},
                               "compute": {"type": ["string", "null"]}}}},
    },
    # OnlineDeploymentTrackedResource -> OnlineDeployment (discriminator endpointComputeType) -> Managed
    "OnlineDeploymentTrackedResource/ManagedOnlineDeployment": {
        "type": "object", "required": ["location", "properties"],
        "properties": {
            "location": {"type": "string", "minLength": 1}, "tags": _TAGS,
            "sku": {"type": ["object", "null"], "required": ["name"]},
            "properties": {
                "type": "object", "required": ["endpointComputeType"],
                "properties": {**_RESOURCE_BASE,
                               "endpointComputeType": {"enum": ["Managed", "Kubernetes", "AzureMLCompute"]},
                               "appInsightsEnabled": {"type": "boolean"}, "instanceType": {"type": "string"},
                               "model": {"type": ["string", "null"]},
                               "environmentId": {"type": ["string", "null"]},
                               "codeConfiguration": {  # CodeConfiguration
                                   "type": ["object", "null"], "required": ["scoringScript"],
                                   "properties": {"codeId": {"type": ["string", "null"]},
                                                  "scoringScript": {"type": "string", "minLength": 1,
                                                                    "pattern": "[a-zA-Z0-9_]"}}},
                               "environmentVariables": {"type": "object",
                                                        "additionalProperties": {"type": ["string", "null"]}}}}},
    },
}


def check(definition: str, body: Any) -> None:
    """Raise when ``body`` breaks the spec's schema for ``definition``."""
    jsonschema.validate(body, SCHEMAS[definition])
