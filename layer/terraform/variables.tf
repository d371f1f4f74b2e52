variable "architecture" {
  description = "Lambda architecture of the layer and the function: arm64 or x86_64."
  type        = string
  default     = "arm64"

  validation {
    condition     = contains(["arm64", "x86_64"], var.architecture)
    error_message = "The architecture must be arm64 or x86_64."
  }
}

variable "layer_zip" {
  description = "Path of the layer zip; empty means the one `make layer` writes for var.architecture."
  type        = string
  default     = ""
}

variable "function_name" {
  description = "Name of the example function, also its OTEL_SERVICE_NAME."
  type        = string
  default     = "lambda-otel-example"
}

variable "otlp_endpoint" {
  description = "OTEL_EXPORTER_OTLP_ENDPOINT: the OTLP backend; /v1/traces, /v1/logs and /v1/metrics are appended."
  type        = string
}

variable "otlp_headers" {
  description = "OTEL_EXPORTER_OTLP_HEADERS, e.g. x-api-key=<key>, values percent-encoded."
  type        = string
  sensitive   = true
}
