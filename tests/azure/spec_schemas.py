"""Request body schemas from the published Azure ML REST specification, for the bodies this app sends.

Written out from the definitions in Azure/azure-rest-api-specs,
``specification/machinelearningservices/resource-manager/Microsoft.MachineLearningServices/stable/2025-09-01/
mfe.json`` (the definition each schema follows is named beside it). Only the parts the app's requests use are
kept, with the spec's ``required`` lists, enums and types, so a body the service would reject fails here.

The batch job a batch endpoint's scoring URI receives is not an ARM resource: its body follows ``BatchJobResource``
of the data-plane specification the SDK itself is generated from, Azure/azure-sdk-for-python,
``sdk/ml/azure-ai-ml/swagger/machinelearningservices/resource-manager/Microsoft.MachineLearningServices/preview/
2020-09-01-dataplanepreview/mfe.json`` (whose ``JobOutputType`` knows ``UriFile`` only).
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

_ASSET_REFERENCE = {  # AssetReferenceBase (discriminator referenceType) -> IdAssetReference, DataPath..., OutputPath...
    "type": ["object", "null"], "required": ["referenceType"],
    "properties": {"referenceType": {"enum": ["Id", "DataPath", "OutputPath"]}, "assetId": {"type": "string"}},
    "if": {"properties": {"referenceType": {"const": "Id"}}}, "then": {"required": ["referenceType", "assetId"]},
}
_DATAPLANE_JOB_INPUT = {  # JobInput (discriminator jobInputType) -> UriFile / UriFolder / MLTable, with its uri
    "type": "object", "required": ["jobInputType"],
    "properties": {"jobInputType": {"enum": ["UriFile", "UriFolder", "MLTable"]},
                   "uri": {"type": "string", "pattern": "[a-zA-Z0-9_]"}},
}
_DATAPLANE_JOB_OUTPUT = {  # JobOutputV2 (discriminator jobOutputType): UriFile only in this version
    "type": "object", "required": ["jobOutputType"],
    "properties": {"jobOutputType": {"enum": ["UriFile"]}, "uri": {"type": "string"}},
}

_FORECAST_HORIZON = {  # ForecastHorizon (discriminator mode) -> AutoForecastHorizon / CustomForecastHorizon (value)
    "type": "object", "required": ["mode"],
    "properties": {"mode": {"enum": ["Auto", "Custom"]}, "value": {"type": "integer"}},
    "if": {"properties": {"mode": {"const": "Custom"}}}, "then": {"required": ["mode", "value"]},
}
_N_CROSS_VALIDATIONS = {  # NCrossValidations (discriminator mode) -> AutoNCrossValidations / CustomNCrossValidations
    "type": ["object", "null"], "required": ["mode"],
    "properties": {"mode": {"enum": ["Auto", "Custom"]}, "value": {"type": "integer"}},
    "if": {"properties": {"mode": {"const": "Custom"}}}, "then": {"required": ["mode", "value"]},
}
_FORECASTING_SETTINGS = {  # ForecastingSettings
    "type": ["object", "null"], "additionalProperties": False,
    "properties": {"countryOrRegionForHolidays": {"type": ["string", "null"]},
                   "cvStepSize": {"type": ["integer", "null"]}, "featureLags": {"type": "string"},
                   "forecastHorizon": _FORECAST_HORIZON, "frequency": {"type": ["string", "null"]},
                   "seasonality": {"type": "object", "required": ["mode"]},
                   "shortSeriesHandlingConfig": {"type": "string"}, "targetAggregateFunction": {"type": "string"},
                   "targetLags": {"type": ["object", "null"], "required": ["mode"]},
                   "targetRollingWindowSize": {"type": ["object", "null"], "required": ["mode"]},
                   "timeColumnName": {"type": ["string", "null"]},
                   "timeSeriesIdColumnNames": {"type": ["array", "null"], "items": {"type": "string"}},
                   "useStl": {"type": "string"}},
}
_MLTABLE_INPUT = {  # MLTableJobInput (AssetJobInput requires uri)
    "type": "object", "required": ["uri", "jobInputType"],
    "properties": {"jobInputType": {"const": "mltable"}, "uri": {"type": "string", "minLength": 1,
                                                                  "pattern": "[a-zA-Z0-9_]"}},
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
    # JobBaseResource -> JobBase (discriminator jobType) -> AutoMLJob, whose taskDetails (AutoMLVertical,
    # discriminator taskType) is Forecasting: TableVertical's and AutoMLVertical's properties and its own. A
    # pipeline's AutoML node is written in the SDK's YAML form; this is the AutoML job that node reads as.
    "JobBaseResource/AutoMLJob/Forecasting": {
        "type": "object", "required": ["properties"],
        "properties": {"properties": {
            "type": "object", "required": ["jobType", "taskDetails"],
            "properties": {**_RESOURCE_BASE, "jobType": {"const": "AutoML"},
                           "computeId": {"type": ["string", "null"]}, "isArchived": {"type": "boolean"},
                           "taskDetails": {
                               "type": "object", "required": ["taskType", "trainingData"],
                               "additionalProperties": False,
                               "properties": {
                                   "taskType": {"const": "Forecasting"},
                                   "logVerbosity": {"type": "string"},
                                   "targetColumnName": {"type": ["string", "null"]},
                                   "trainingData": _MLTABLE_INPUT,
                                   "cvSplitColumnNames": {"type": ["array", "null"], "items": {"type": "string"}},
                                   "featurizationSettings": {"type": ["object", "null"]},
                                   "limitSettings": {  # TableVerticalLimitSettings
                                       "type": ["object", "null"],
                                       "properties": {"enableEarlyTermination": {"type": "boolean"},
                                                      "maxTrials": {"type": "integer"},
                                                      "timeout": {"type": "string", "pattern": "^P"},
                                                      "trialTimeout": {"type": "string", "pattern": "^P"}}},
                                   "nCrossValidations": _N_CROSS_VALIDATIONS,
                                   "testData": {"type": ["object", "null"]},
                                   "testDataSize": {"type": ["number", "null"]},
                                   "validationData": {"type": ["object", "null"]},
                                   "validationDataSize": {"type": ["number", "null"]},
                                   "weightColumnName": {"type": ["string", "null"]},
                                   "forecastingSettings": _FORECASTING_SETTINGS,
                                   "primaryMetric": {"enum": ["SpearmanCorrelation", "NormalizedRootMeanSquaredError",
                                                              "R2Score", "NormalizedMeanAbsoluteError"]},
                                   "trainingSettings": {"type": ["object", "null"]}}}}}},
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
    # BatchEndpointTrackedResource -> BatchEndpoint (EndpointPropertiesBase requires authMode)
    "BatchEndpointTrackedResource": {
        "type": "object", "required": ["location", "properties"],
        "properties": {
            "location": {"type": "string", "minLength": 1}, "tags": _TAGS, "identity": _IDENTITY,
            "properties": {
                "type": "object", "required": ["authMode"], "additionalProperties": False,
                "properties": {**_RESOURCE_BASE, "authMode": {"enum": ["AMLToken", "Key", "AADToken"]},
                               "defaults": {"type": ["object", "null"], "additionalProperties": False,
                                            "properties": {"deploymentName": {"type": ["string", "null"]}}},
                               "keys": {"type": ["object", "null"]}}}},
    },
    # BatchDeploymentTrackedResource -> BatchDeployment (EndpointDeploymentPropertiesBase + the batch settings)
    "BatchDeploymentTrackedResource": {
        "type": "object", "required": ["location", "properties"],
        "properties": {
            "location": {"type": "string", "minLength": 1}, "tags": _TAGS,
            "properties": {
                "type": "object", "additionalProperties": False,
                "properties": {**_RESOURCE_BASE,
                               "codeConfiguration": {
                                   "type": ["object", "null"], "required": ["scoringScript"],
                                   "properties": {"codeId": {"type": ["string", "null"]},
                                                  "scoringScript": {"type": "string", "minLength": 1,
                                                                    "pattern": "[a-zA-Z0-9_]"}}},
                               "environmentId": {"type": ["string", "null"]},
                               "environmentVariables": {"type": ["object", "null"],
                                                        "additionalProperties": {"type": ["string", "null"]}},
                               "compute": {"type": ["string", "null"]},
                               "deploymentConfiguration": {"type": ["object", "null"]},
                               "errorThreshold": {"type": "integer", "minimum": -1},
                               "loggingLevel": {"enum": ["Info", "Warning", "Debug"]},
                               "maxConcurrencyPerInstance": {"type": "integer"},
                               "miniBatchSize": {"type": "integer"},
                               "model": _ASSET_REFERENCE,
                               "outputAction": {"enum": ["SummaryOnly", "AppendRow"]},
                               "outputFileName": {"type": "string"},
                               "resources": {"type": ["object", "null"], "additionalProperties": False,
                                             "properties": {"instanceCount": {"type": "integer"},
                                                            "instanceType": {"type": ["string", "null"]},
                                                            "properties": {"type": ["object", "null"]}}},
                               "retrySettings": {"type": ["object", "null"], "additionalProperties": False,
                                                 "properties": {"maxRetries": {"type": "integer"},
                                                                "timeout": {"type": "string",
                                                                            "pattern": "^P"}}}}}},
    },
    # BatchJobResource -> BatchJob (the data-plane specification named above)
    "BatchJobResource": {
        "type": "object", "required": ["properties"],
        "properties": {"properties": {
            "type": "object", "additionalProperties": False,
            "properties": {"name": {"type": "string"}, "description": {"type": "string"},
                           "inputData": {"type": "object", "additionalProperties": _DATAPLANE_JOB_INPUT},
                           "outputData": {"type": "object", "additionalProperties": _DATAPLANE_JOB_OUTPUT},
                           "outputFileName": {"type": "string"}, "errorThreshold": {"type": "integer"},
                           "miniBatchSize": {"type": "integer"}, "maxConcurrencyPerInstance": {"type": "integer"},
                           "loggingLevel": {"enum": ["Info", "Warning", "Debug"]},
                           "properties": {"type": "object", "additionalProperties": {"type": "string"}},
                           "tags": {"type": "object", "additionalProperties": {"type": "string"}},
                           "retrySettings": {"type": "object"}, "compute": {"type": "object"}}}},
    },
}


def check(definition: str, body: Any) -> None:
    """Raise when ``body`` breaks the spec's schema for ``definition``."""
    jsonschema.validate(body, SCHEMAS[definition])
