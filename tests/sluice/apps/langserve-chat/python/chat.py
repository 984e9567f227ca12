"""A LangServe chain (prompt | ChatOpenAI) served by Sluice as a python-service."""

import sys

import httpx
from fastapi import FastAPI
from langchain_core.prompts import ChatPromptTemplate
from langchain_openai import ChatOpenAI
from langserve import add_routes

from sluice import Service


class ChatService(Service):
    def app(self) -> FastAPI:
        app = FastAPI(title="LangServe chat")
        prompt = ChatPromptTemplate.from_template("tell me a joke about {topic}")
        add_routes(app, prompt | ChatOpenAI(model="gpt-4o-mini"), path="/chain")

        @app.get("/environment")
        def environment() -> dict[str, str]:
            return {"prefix": sys.prefix, "httpx": httpx.__version__}

        return app
