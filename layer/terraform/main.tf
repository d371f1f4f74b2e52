# The lambda-otel extension layer from the zip that `make layer` writes, and a Python
# function that uses it. Run `make layer` first, then:
#   terraform init && terraform apply -var otlp_endpoint=https://... -var otlp_headers=x-api-key=...

terraform {
  required_version = ">= 1.5"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.0"
    }
    archive = {
      source  = "hashicorp/archive"
      version = ">= 2.4"
    }
  }
}

locals {
  layer_zip = var.layer_zip != "" ? var.layer_zip : "${path.module}/../../dist/lambda-otel-${var.architecture}.zip"
}

resource "aws_lambda_layer_version" "lambda_otel" {
  layer_name  = "lambda-otel-${var.architecture}"
  description = "lambda-otel, the Telemetry API to OpenTelemetry extension"
  filename    = local.layer_zip
  # The same value as the CodeSha256 that `make layer` prints. An unchanged binary gives
  # the same zip, so rebuilding alone does not publish a new layer version.
  source_code_hash         = filebase64sha256(local.layer_zip)
  compatible_architectures = [var.architecture]
  compatible_runtimes      = ["python3.13", "python3.12"]
}

data "aws_iam_policy_document" "assume_lambda" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "function" {
  name_prefix        = "lambda-otel-example-"
  assume_role_policy = data.aws_iam_policy_document.assume_lambda.json
}

data "aws_partition" "current" {}

resource "aws_iam_role_policy_attachment" "logs" {
  role       = aws_iam_role.function.name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
}

# Lambda refuses active tracing when the role cannot write to X-Ray.
resource "aws_iam_role_policy_attachment" "xray" {
  role       = aws_iam_role.function.name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/AWSXRayDaemonWriteAccess"
}

data "archive_file" "function" {
  type        = "zip"
  output_path = "${path.module}/.terraform/function.zip"

  source {
    filename = "index.py"
    content  = <<-PY
      def handler(event, context):
          print("hello from", context.function_name)
          return {"ok": True}
    PY
  }
}

resource "aws_lambda_function" "example" {
  function_name    = var.function_name
  role             = aws_iam_role.function.arn
  runtime          = "python3.13"
  architectures    = [var.architecture]
  handler          = "index.handler"
  filename         = data.archive_file.function.output_path
  source_code_hash = data.archive_file.function.output_base64sha256
  memory_size      = 256
  timeout          = 10
  layers           = [aws_lambda_layer_version.lambda_otel.arn]

  # Active tracing gives each invocation an X-Ray trace id, which the extension uses as
  # the trace id of the invocation's spans and logs.
  tracing_config {
    mode = "Active"
  }

  environment {
    variables = {
      OTEL_SERVICE_NAME           = var.function_name
      OTEL_EXPORTER_OTLP_ENDPOINT = var.otlp_endpoint
      OTEL_EXPORTER_OTLP_PROTOCOL = "http/protobuf"
      OTEL_EXPORTER_OTLP_HEADERS  = var.otlp_headers
      LAMBDA_OTEL_FLUSH           = "adaptive"
    }
  }

  depends_on = [aws_iam_role_policy_attachment.logs, aws_iam_role_policy_attachment.xray]
}

output "layer_version_arn" {
  description = "ARN of the layer version."
  value       = aws_lambda_layer_version.lambda_otel.arn
}

output "function_name" {
  value = aws_lambda_function.example.function_name
}
